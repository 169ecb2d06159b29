package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

// sealed returns a Store with a secret key on a fresh miniredis.
func sealed(t *testing.T) (*store.Store, redis.UniversalClient) {
	t.Helper()
	_, rdb := testenv.Miniredis(t)
	box, err := secretbox.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return store.New(rdb, store.Options{Secrets: box}), rdb
}

// redisHolds reports whether any string value in rdb contains needle.
func redisHolds(t *testing.T, rdb redis.UniversalClient, needle string) bool {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if v, err := rdb.Get(ctx, k).Result(); err == nil && strings.Contains(v, needle) {
			return true
		}
	}
	return false
}

func TestCredentialSecretsSealed(t *testing.T) {
	t.Parallel()
	s, rdb := sealed(t)
	ctx := context.Background()
	const canary = "Canary-Secret-93!x"
	c, err := s.CreateCredential(ctx, store.Credential{AccountID: "root", Name: "deploy", Kind: store.CredentialPassword, Username: "ops"},
		store.Secret{Secret: canary, Passphrase: canary + "pp"})
	if err != nil {
		t.Fatal(err)
	}
	if redisHolds(t, rdb, canary) {
		t.Fatal("Redis holds the secret in clear text")
	}
	sec, err := s.CredentialSecret(ctx, c.ID)
	if err != nil || sec.Secret != canary || sec.Passphrase != canary+"pp" {
		t.Fatalf("CredentialSecret = %+v, %v", sec, err)
	}
	if _, err := s.CreateCredential(ctx, store.Credential{AccountID: "root", Name: "DEPLOY", Kind: store.CredentialPassword, Username: "x"},
		store.Secret{Secret: "x"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate name: %v, want ErrConflict", err)
	}
	sv, err := s.CreateServer(ctx, store.Server{AccountID: "root", Name: "web1", Address: "10.0.0.1", OS: "linux", Transport: "ssh", CredentialID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if sv.Datacenter != store.DefaultDatacenter {
		t.Errorf("datacenter %q", sv.Datacenter)
	}
	if err := s.DeleteCredential(ctx, c.ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("delete a used credential: %v, want ErrConflict", err)
	}
	if err := s.RecordHostKey(ctx, sv.ID, "ssh-ed25519 AAAA1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordHostKey(ctx, sv.ID, "ssh-ed25519 AAAA2"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second host key: %v, want ErrConflict", err)
	}
	if _, err := s.UpdateServer(ctx, sv.ID, func(x *store.Server) error { x.Name = "web-1"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateServer(ctx, store.Server{AccountID: "root", Name: "web1", Address: "10.0.0.2", OS: "linux", Transport: "ssh", CredentialID: c.ID}); err != nil {
		t.Errorf("the old name was not freed by the rename: %v", err)
	}
	all, err := s.Servers(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Servers = %v, %v", all, err)
	}
	for _, x := range all {
		if err := s.DeleteServer(ctx, x.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteCredential(ctx, c.ID); err != nil {
		t.Errorf("delete an unused credential: %v", err)
	}
}

func TestCredentialWithoutKey(t *testing.T) {
	t.Parallel()
	_, rdb := testenv.Miniredis(t)
	s := store.New(rdb, store.Options{})
	_, err := s.CreateCredential(context.Background(), store.Credential{AccountID: "root", Name: "x", Kind: store.CredentialPassword}, store.Secret{Secret: "x"})
	if !errors.Is(err, store.ErrNoSecretKey) {
		t.Fatalf("err = %v, want ErrNoSecretKey", err)
	}
}

func TestCheckServerReportsEveryProblem(t *testing.T) {
	t.Parallel()
	no := false
	p := store.CheckServer(store.Server{Name: " x", Address: "a b", Port: 70000, OS: "beos", Transport: "telnet",
		WinRM: &store.WinRMSettings{HTTPS: &no, Insecure: true}})
	paths := map[string]bool{}
	for _, x := range p {
		paths[x.Path] = true
	}
	for _, want := range []string{"name", "address", "port", "os", "transport", "credential", "winrm", "winrm.https"} {
		if !paths[want] {
			t.Errorf("no problem at %s in %+v", want, p)
		}
	}
}

// TestWinRMDefaultsToHTTPS checks that a server recorded without WinRM
// settings, or without "https", uses HTTPS on 5986, and that only an
// explicit "https": false asks for plain HTTP, which is refused.
func TestWinRMDefaultsToHTTPS(t *testing.T) {
	t.Parallel()
	base := `{"name":"w","address":"10.0.0.9","os":"windows","transport":"winrm","credential":"c"`
	tests := []struct {
		name     string
		json     string
		https    bool
		endpoint string
		refused  bool
	}{
		{"no winrm settings", base + `}`, true, "10.0.0.9:5986", false},
		{"settings without https", base + `,"winrm":{"ca_cert":"x"}}`, true, "10.0.0.9:5986", false},
		{"https true", base + `,"winrm":{"https":true}}`, true, "10.0.0.9:5986", false},
		{"explicit opt-out", base + `,"winrm":{"https":false}}`, false, "10.0.0.9:5985", true},
	}
	for _, tt := range tests {
		var sv store.Server
		if err := json.Unmarshal([]byte(tt.json), &sv); err != nil {
			t.Fatal(err)
		}
		if got := sv.WinRM.UseHTTPS(); got != tt.https {
			t.Errorf("%s: UseHTTPS = %v, want %v", tt.name, got, tt.https)
		}
		if got := sv.Endpoint(); got != tt.endpoint {
			t.Errorf("%s: Endpoint = %s, want %s", tt.name, got, tt.endpoint)
		}
		refused := false
		for _, p := range store.CheckServer(sv) {
			if p.Path == "winrm.https" {
				refused = true
				if !strings.Contains(p.Message, "plain HTTP is refused") {
					t.Errorf("%s: message %q does not say why", tt.name, p.Message)
				}
			}
		}
		if refused != tt.refused {
			t.Errorf("%s: refused = %v, want %v", tt.name, refused, tt.refused)
		}
	}
}
