package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/api"
	"github.com/packflow/packflow/store"
)

// An admin token configured at start creates an account and mints a
// viewer token for it; the secret is shown only in that answer.
func Example() {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), DisableIdentity: true})
	defer func() { _ = rdb.Close() }()

	srv, err := api.New(api.Options{Store: store.New(rdb, store.Options{}), AdminToken: "example-admin-token"})
	if err != nil {
		panic(err)
	}
	if err := srv.Bootstrap(context.Background()); err != nil { // Start does this too
		panic(err)
	}
	call := func(method, path, token, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec
	}

	res := call(http.MethodPost, "/api/v1/accounts", "example-admin-token", `{"name":"acme"}`)
	fmt.Println("create account:", res.Code)

	res = call(http.MethodPost, "/api/v1/tokens", "example-admin-token", `{"account":"acme","user":"alice","role":"viewer"}`)
	var minted struct{ Token string }
	_ = json.Unmarshal(res.Body.Bytes(), &minted)
	fmt.Println("mint token:", res.Code)

	fmt.Println("viewer lists accounts:", call(http.MethodGet, "/api/v1/accounts", minted.Token, "").Code)
	res = call(http.MethodPost, "/api/v1/accounts", minted.Token, `{"name":"acme-eu"}`)
	fmt.Println("viewer creates an account:", res.Code, res.Header().Get("Content-Type"))
	// Output:
	// create account: 201
	// mint token: 201
	// viewer lists accounts: 200
	// viewer creates an account: 403 application/problem+json
}
