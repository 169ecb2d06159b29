// Package redisconn turns a PACKFLOW_REDIS_URL into a go-redis client that
// both our records (store) and asynq share. It understands three forms:
//
//	redis://[user:password@]host:port[/db]          plain TCP
//	rediss://[user:password@]host:port[/db]         TLS
//	redis+sentinel://[user:password@]h1:p1,h2:p2/master[/db][?sentinel_password=…]
//
// In the Sentinel form the user and password are those of the Redis
// servers; sentinel_password, when the sentinels need one of their own.
package redisconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrBadURL is wrapped by every parse error.
var ErrBadURL = errors.New("bad Redis URL")

// Parse validates rawURL and returns options for redis.NewUniversalClient.
// Client identity (CLIENT SETINFO) is always off: Redis 7.0 and miniredis
// reject it.
func Parse(rawURL string) (*redis.UniversalOptions, error) {
	u, hosts, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	opts := &redis.UniversalOptions{DisableIdentity: true}
	if u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return nil, fmt.Errorf("%w: %q has no host (want redis://host:port/db)", ErrBadURL, rawURL)
		}
		host := u.Host
		if u.Port() == "" {
			host += ":6379"
		}
		opts.Addrs = []string{host}
		db, err := parseDB(strings.TrimPrefix(u.Path, "/"))
		if err != nil {
			return nil, err
		}
		opts.DB = db
		if u.Scheme == "rediss" {
			opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
		}
	case "redis+sentinel", "redis-sentinel":
		if hosts == "" {
			return nil, fmt.Errorf("%w: %q names no sentinels (want redis+sentinel://h1:26379,h2:26379/master/db)", ErrBadURL, rawURL)
		}
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if parts[0] == "" {
			return nil, fmt.Errorf("%w: %q names no master (want redis+sentinel://h1:26379,h2:26379/master/db)", ErrBadURL, rawURL)
		}
		if len(parts) > 2 {
			return nil, fmt.Errorf("%w: %q has too many path elements (want /master/db)", ErrBadURL, rawURL)
		}
		opts.MasterName = parts[0]
		if len(parts) == 2 {
			db, err := parseDB(parts[1])
			if err != nil {
				return nil, err
			}
			opts.DB = db
		}
		for _, h := range strings.Split(hosts, ",") {
			if h == "" {
				return nil, fmt.Errorf("%w: empty sentinel address in %q", ErrBadURL, rawURL)
			}
			if !strings.Contains(h, ":") {
				h += ":26379"
			}
			opts.Addrs = append(opts.Addrs, h)
		}
		opts.SentinelPassword = u.Query().Get("sentinel_password")
	default:
		return nil, fmt.Errorf("%w: scheme %q (use redis://, rediss:// or redis+sentinel://)", ErrBadURL, u.Scheme)
	}
	return opts, nil
}

// parseURL parses rawURL. net/url refuses the comma-separated host list of
// the Sentinel form, so that list is cut out first and returned on its own.
func parseURL(rawURL string) (*url.URL, string, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if ok && (scheme == "redis+sentinel" || scheme == "redis-sentinel") {
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		authority := rest[:end]
		userinfo, hosts := "", authority
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			userinfo, hosts = authority[:at+1], authority[at+1:]
		}
		u, err := url.Parse(scheme + "://" + userinfo + "sentinels" + rest[end:])
		if err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrBadURL, err)
		}
		return u, hosts, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return u, u.Host, nil
}

func parseDB(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	db, err := strconv.Atoi(s)
	if err != nil || db < 0 {
		return 0, fmt.Errorf("%w: database %q is not a number ≥ 0", ErrBadURL, s)
	}
	return db, nil
}

// Open parses rawURL and returns a connected-on-demand client.
func Open(rawURL string) (redis.UniversalClient, error) {
	opts, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(opts), nil
}

// Redacted returns rawURL with any password replaced, for logs.
func Redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
