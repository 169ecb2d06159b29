package tasks_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/winrm"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// TestLocalTransportIsForRootAdmins checks the rule again where a run
// connects: records that the API would refuse today never run.
func TestLocalTransportIsForRootAdmins(t *testing.T) {
	ctx := context.Background()
	_, rdb := testenv.Miniredis(t)
	st := store.New(rdb, store.Options{})
	if _, err := st.EnsureRootAccount(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := st.EnsureBootstrapToken(ctx, "bootstrap-admin-secret-0123")
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := st.CreateAccount(ctx, store.Account{Name: "tenant", Parent: store.RootAccountID})
	if err != nil {
		t.Fatal(err)
	}
	tenantAdmin, _, err := st.CreateToken(ctx, store.Token{AccountID: tenant.ID, User: "mallory", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	rootOperator, _, err := st.CreateToken(ctx, store.Token{AccountID: store.RootAccountID, User: "op", Role: store.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	revoked, _, err := st.CreateToken(ctx, store.Token{AccountID: store.RootAccountID, User: "gone", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	conn, err := tasks.NewConnector(tasks.ConnectorOptions{Store: st, AllowLocal: true, LocalDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	local := func(name, account, approvedBy string) store.Server {
		sv, err := st.CreateServer(ctx, store.Server{Name: name, AccountID: account, Address: "localhost", OS: "linux",
			Transport: store.TransportLocal, LocalApprovedBy: approvedBy})
		if err != nil {
			t.Fatal(err)
		}
		return sv
	}
	refused := map[string]store.Server{
		"tenant's record from before the rule": local("old", tenant.ID, ""),
		"tenant's record naming a root admin":  local("forged", tenant.ID, admin.ID),
		"root record never approved":           local("unapproved", store.RootAccountID, ""),
		"approved by a root operator":          local("operator", store.RootAccountID, rootOperator.ID),
		"approved by a revoked admin token":    local("revoked", store.RootAccountID, revoked.ID),
		"approved by a tenant's admin":         local("tenant-admin", store.RootAccountID, tenantAdmin.ID),
	}
	for name, sv := range refused {
		tg, err := conn.Connect(ctx, sv)
		if err == nil {
			_ = tg.Close()
			t.Errorf("%s: connected, want refused", name)
			continue
		}
		if !errors.Is(err, store.ErrLocalForbidden) || !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("%s: err = %v, want a final ErrLocalForbidden", name, err)
		}
	}

	t.Setenv("PACKFLOW_SECRET_KEY", "worker-secret-must-not-leak")
	tg, err := conn.Connect(ctx, local("ok", store.RootAccountID, admin.ID))
	if err != nil {
		t.Fatalf("a local server approved by the root admin: %v", err)
	}
	defer func() { _ = tg.Close() }()
	var out strings.Builder
	if err := tg.Run(ctx, &remote.Cmd{Command: "env", Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "worker-secret-must-not-leak") {
		t.Errorf("a command on the local transport saw the worker's environment:\n%s", out.String())
	}
}

// TestWinRMConnectsOverHTTPSByDefault checks the connector's choice for
// WinRM servers: HTTPS with certificate verification unless the record
// opts out, and a record that opts out (kept from before HTTPS was the
// default) fails for good with the reason.
func TestWinRMConnectsOverHTTPSByDefault(t *testing.T) {
	ctx := context.Background()
	_, rdb := testenv.Miniredis(t)
	box, err := secretbox.New(bytes.Repeat([]byte{0x33}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(rdb, store.Options{Secrets: box})
	cred, err := st.CreateCredential(ctx, store.Credential{AccountID: store.RootAccountID, Name: "win",
		Kind: store.CredentialPassword, Username: winrmtest.DefaultUser}, store.Secret{Secret: winrmtest.DefaultPassword})
	if err != nil {
		t.Fatal(err)
	}
	srv := winrmtest.NewTLS(winrmtest.Options{Handler: winrmtest.NewFakeHost(winrmtest.FakeHostOptions{})})
	t.Cleanup(srv.Close)
	conn, err := tasks.NewConnector(tasks.ConnectorOptions{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	sv := store.Server{Name: "w", Address: srv.Host, Port: srv.Port, OS: "windows", Transport: store.TransportWinRM, CredentialID: cred.ID}

	// No settings: HTTPS, and the test CA is not among the system roots.
	if _, err := conn.Connect(ctx, sv); !errors.Is(err, remote.ErrHostKeyMismatch) {
		t.Errorf("without settings: err = %v, want a certificate verification failure", err)
	}
	sv.WinRM = &store.WinRMSettings{CACert: string(srv.CACertPEM)}
	tg, err := conn.Connect(ctx, sv)
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	_ = tg.Close()
	no := false
	sv.WinRM = &store.WinRMSettings{HTTPS: &no}
	_, err = conn.Connect(ctx, sv)
	if !errors.Is(err, winrm.ErrPlainHTTP) || !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "use HTTPS") {
		t.Errorf("opted out of HTTPS: err = %v, want a final ErrPlainHTTP", err)
	}
}
