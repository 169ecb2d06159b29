package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server transports.
const (
	TransportSSH   = "ssh"
	TransportWinRM = "winrm"
	TransportLocal = "local"
)

// DefaultDatacenter is the datacenter of a server recorded without one.
const DefaultDatacenter = "default"

// WinRMSettings are the WinRM connection settings of a Windows server.
// Without them, or with https absent, WinRM runs over HTTPS (port 5986)
// with certificate verification.
type WinRMSettings struct {
	// HTTPS false is an explicit opt-out of HTTPS; absent (nil) means
	// true. Plain HTTP is refused (see CheckServer).
	HTTPS *bool `json:"https,omitempty"`
	// Insecure skips certificate verification; only when set explicitly.
	Insecure bool `json:"insecure"`
	// CACert is a PEM certificate (or CA) the server's certificate must
	// chain to, instead of the system roots.
	CACert string `json:"ca_cert,omitempty"`
}

// Server is a host executions run on.
type Server struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
	// Address is a host name or IP address.
	Address string `json:"address"`
	// Port is the transport's port; 0 means its default (22, 5985/5986).
	Port int `json:"port,omitempty"`
	// OS is linux or windows.
	OS        string `json:"os"`
	Transport string `json:"transport"`
	// CredentialID names the credential the server is logged in with.
	CredentialID string `json:"credential"`
	Datacenter   string `json:"datacenter"`
	// HostKey is the pinned SSH host key (an authorized_keys line). When
	// empty, the first connection records the key it is shown
	// (trust on first use) and later ones must see the same.
	HostKey string         `json:"host_key,omitempty"`
	WinRM   *WinRMSettings `json:"winrm,omitempty"`
	// LocalApprovedBy is the ID of the root account's admin token that
	// created or last changed a local server. A run on the local
	// transport needs it to still be such a token (see CheckLocalServer).
	LocalApprovedBy string    `json:"local_approved_by,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// UseHTTPS reports whether WinRM runs over HTTPS: unless a server says
// "https": false.
func (w *WinRMSettings) UseHTTPS() bool { return w == nil || w.HTTPS == nil || *w.HTTPS }

// plainHTTPRefused explains why "https": false is refused.
const plainHTTPRefused = "plain HTTP is refused: Basic authentication would send the password in clear, and NTLM message encryption is not supported; enable the server's HTTPS listener (port 5986) and drop \"https\": false (use ca_cert for a private CA)"

// Endpoint returns host:port of the server for its transport.
func (sv Server) Endpoint() string {
	port := sv.Port
	if port == 0 {
		switch {
		case sv.Transport == TransportWinRM && sv.WinRM.UseHTTPS():
			port = 5986
		case sv.Transport == TransportWinRM:
			port = 5985
		default:
			port = 22
		}
	}
	return net.JoinHostPort(sv.Address, fmt.Sprint(port))
}

// CheckServer returns every problem of sv's fields, paths named as in the
// API's request body.
func CheckServer(sv Server) []Problem {
	var out []Problem
	add := func(path, rule, msg string) { out = append(out, Problem{Path: path, Rule: rule, Message: msg}) }
	if msg := CheckName(sv.Name); msg != "" {
		add("name", "invalid value", msg)
	}
	if strings.TrimSpace(sv.Address) == "" {
		add("address", "missing", "an address (host name or IP) is required")
	} else if strings.ContainsAny(sv.Address, " \t\r\n/@") {
		add("address", "invalid value", "an address is a host name or IP address, without spaces, user or path")
	}
	if sv.Port < 0 || sv.Port > 65535 {
		add("port", "invalid value", "a port is from 1 to 65535")
	}
	switch sv.OS {
	case "linux", "windows":
	case "":
		add("os", "missing", "os is linux or windows")
	default:
		add("os", "invalid value", "os is linux or windows")
	}
	switch sv.Transport {
	case TransportSSH, TransportLocal:
	case TransportWinRM:
		if sv.OS == "linux" {
			add("transport", "invalid value", "winrm serves windows servers")
		}
	case "":
		add("transport", "missing", "transport is ssh, winrm or local")
	default:
		add("transport", "invalid value", "transport is ssh, winrm or local")
	}
	if sv.CredentialID == "" && sv.Transport != TransportLocal {
		add("credential", "missing", "a credential (ID or name) is required")
	}
	// Braces would break the hash tag of its queue exec:<dc> (see worker.CheckQueueName).
	if sv.Datacenter != "" && (strings.ContainsAny(sv.Datacenter, " \t:,{}") || len(sv.Datacenter) > 64) {
		add("datacenter", "invalid value", "a datacenter name has at most 64 characters, without spaces, ':', ',', '{' or '}'")
	}
	if sv.WinRM != nil {
		if sv.Transport != TransportWinRM {
			add("winrm", "invalid value", "winrm settings apply to the winrm transport only")
		}
		if !sv.WinRM.UseHTTPS() {
			add("winrm.https", "invalid value", plainHTTPRefused)
		}
	}
	return out
}

func (s *Store) serverKey(id string) string { return s.key("{inv}", "server", id) }
func (s *Store) serverNameKey(account, name string) string {
	return s.key("{inv}", "server-name", account, strings.ToLower(name))
}
func (s *Store) serversKey() string { return s.key("{inv}", "servers") }

// CreateServer records sv. Its credential must exist; names are unique
// within an account.
func (s *Store) CreateServer(ctx context.Context, sv Server) (Server, error) {
	if sv.Datacenter == "" {
		sv.Datacenter = DefaultDatacenter
	}
	if p := CheckServer(sv); len(p) > 0 {
		return Server{}, fmt.Errorf("%w: %s: %s", ErrInvalid, p[0].Path, p[0].Message)
	}
	sv.ID = newID()
	sv.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	sv.UpdatedAt = sv.CreatedAt
	err := s.putServer(ctx, sv, nil)
	if err != nil {
		return Server{}, wrapStoreErr("create server", err)
	}
	return sv, nil
}

// putServer writes sv, moving its name index and credential use from old
// (nil for a new server) in one transaction.
func (s *Store) putServer(ctx context.Context, sv Server, old *Server) error {
	data, err := jsonBytes(sv)
	if err != nil {
		return err
	}
	nameKey := s.serverNameKey(sv.AccountID, sv.Name)
	watch := []string{nameKey, s.serverKey(sv.ID)}
	if sv.CredentialID != "" {
		watch = append(watch, s.credKey(sv.CredentialID))
	}
	return s.pkgTx(ctx, func(tx *redis.Tx) error {
		owner, err := tx.Get(ctx, nameKey).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if owner != "" && owner != sv.ID {
			return fmt.Errorf("%w: server name %q is taken in this account", ErrConflict, sv.Name)
		}
		if sv.CredentialID != "" {
			n, err := tx.Exists(ctx, s.credKey(sv.CredentialID)).Result()
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("credential %q: %w", sv.CredentialID, ErrNotFound)
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if old != nil {
				if !strings.EqualFold(old.Name, sv.Name) {
					p.Del(ctx, s.serverNameKey(old.AccountID, old.Name))
				}
				if old.CredentialID != "" {
					p.SRem(ctx, s.credUsersKey(old.CredentialID), sv.ID)
				}
			}
			p.Set(ctx, s.serverKey(sv.ID), data, 0)
			p.Set(ctx, nameKey, sv.ID, 0)
			p.ZAdd(ctx, s.serversKey(), redis.Z{Member: sv.ID})
			if sv.CredentialID != "" {
				p.SAdd(ctx, s.credUsersKey(sv.CredentialID), sv.ID)
			}
			return nil
		})
		return err
	}, watch...)
}

// Server returns the server with id, or ErrNotFound.
func (s *Store) Server(ctx context.Context, id string) (Server, error) {
	return getRecord[Server](ctx, s.rdb, s.serverKey(id), "server %q", id)
}

// Servers returns every server, ordered by ID.
func (s *Store) Servers(ctx context.Context) ([]Server, error) {
	out, err := listJSON[Server](ctx, s, s.serversKey(), s.serverKey)
	if err != nil {
		return nil, fmt.Errorf("store: list servers: %w", err)
	}
	return out, nil
}

// UpdateServer applies fn to server id and writes the result, checked
// like a new server. The ID, account and creation time cannot change.
func (s *Store) UpdateServer(ctx context.Context, id string, fn func(*Server) error) (Server, error) {
	old, err := s.Server(ctx, id)
	if err != nil {
		return Server{}, err
	}
	sv := old
	if old.WinRM != nil {
		w := *old.WinRM
		sv.WinRM = &w
	}
	if err := fn(&sv); err != nil {
		return Server{}, err
	}
	sv.ID, sv.AccountID, sv.CreatedAt = old.ID, old.AccountID, old.CreatedAt
	if sv.Datacenter == "" {
		sv.Datacenter = DefaultDatacenter
	}
	if p := CheckServer(sv); len(p) > 0 {
		return Server{}, fmt.Errorf("%w: %s: %s", ErrInvalid, p[0].Path, p[0].Message)
	}
	sv.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	if err := s.putServer(ctx, sv, &old); err != nil {
		return Server{}, wrapStoreErr("update server", err)
	}
	return sv, nil
}

// RecordHostKey pins key as server id's host key when none is pinned yet
// (trust on first use). A different key already pinned is ErrConflict.
func (s *Store) RecordHostKey(ctx context.Context, id, key string) error {
	k := s.serverKey(id)
	err := s.pkgTx(ctx, func(tx *redis.Tx) error {
		var sv Server
		if err := getJSON(ctx, tx, k, &sv); err != nil {
			return err
		}
		switch sv.HostKey {
		case key:
			return nil
		case "":
		default:
			return fmt.Errorf("%w: server %q has another host key pinned", ErrConflict, sv.Name)
		}
		sv.HostKey = key
		data, err := jsonBytes(sv)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, k, data, 0)
			return nil
		})
		return err
	}, k)
	return wrapStoreErr("record host key", err)
}

// DeleteServer deletes server id.
func (s *Store) DeleteServer(ctx context.Context, id string) error {
	sv, err := s.Server(ctx, id)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.serverKey(id))
		p.Del(ctx, s.serverNameKey(sv.AccountID, sv.Name))
		p.ZRem(ctx, s.serversKey(), id)
		if sv.CredentialID != "" {
			p.SRem(ctx, s.credUsersKey(sv.CredentialID), id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete server: %w", err)
	}
	return nil
}

// ErrLocalForbidden is wrapped when a server on the local transport is
// created, changed or run without the rights it needs.
var ErrLocalForbidden = errors.New("the local transport runs commands on the worker itself, with access to its files and process: only admins of the root account may create, change or run local servers")

// MayManageLocal reports whether a token of account with role may create
// or change servers on the local transport: admins of the root account
// only.
func MayManageLocal(account string, role Role) bool {
	return account == RootAccountID && role == RoleAdmin
}

// CheckLocalServer tells whether sv, a server on the local transport, may
// run now: it belongs to the root account and the token that approved it
// (LocalApprovedBy) is still an admin token of the root account. Records
// made before this rule, by another account, or approved by a token since
// revoked fail with ErrLocalForbidden; an admin of the root account saving
// the server again approves it anew.
func (s *Store) CheckLocalServer(ctx context.Context, sv Server) error {
	if sv.AccountID != RootAccountID {
		return fmt.Errorf("server %s belongs to account %s: %w", sv.Name, sv.AccountID, ErrLocalForbidden)
	}
	if sv.LocalApprovedBy == "" {
		return fmt.Errorf("server %s was never approved by an admin of the root account (save it again with such a token): %w", sv.Name, ErrLocalForbidden)
	}
	t, err := s.Token(ctx, sv.LocalApprovedBy)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("server %s: the token that approved it was revoked (save it again with an admin token of the root account): %w", sv.Name, ErrLocalForbidden)
	}
	if err != nil {
		return fmt.Errorf("server %s: check local approval: %w", sv.Name, err)
	}
	if !MayManageLocal(t.AccountID, t.Role) {
		return fmt.Errorf("server %s: approved by a token that is not an admin of the root account: %w", sv.Name, ErrLocalForbidden)
	}
	return nil
}
