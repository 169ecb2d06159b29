// Package redisconn turns a PACKFLOW_REDIS_URL into a go-redis client that
// both our records (store) and asynq share. It understands four forms:
//
//	redis://[user:password@]host:port[/db]          plain TCP
//	rediss://[user:password@]host:port[/db]         TLS
//	redis+sentinel://[user:password@]h1:p1,h2:p2/master[/db][?sentinel_password=…]
//	redis+cluster://[user:password@]h1:p1,h2:p2[?tls=true]
//
// In the Sentinel form the user and password are those of the Redis
// servers; sentinel_password, when the sentinels need one of their own.
//
// The Cluster form names any nodes of a Redis Cluster (one is enough; the
// client learns the others from it) and always uses a cluster client, even
// with one address. A cluster has only database 0, so the form takes no
// database. Records keep the keys of each operation in one slot with hash
// tags; asynq keeps each queue's keys in the slot of "{<queue>}", which is
// why queue names may not contain braces.
package redisconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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
			return nil, fmt.Errorf("%w: %q has no host (want redis://host:port/db)", ErrBadURL, Redacted(rawURL))
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
	case "redis+cluster", "rediss+cluster":
		if hosts == "" {
			return nil, fmt.Errorf("%w: %q names no nodes (want redis+cluster://h1:6379,h2:6379)", ErrBadURL, Redacted(rawURL))
		}
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return nil, fmt.Errorf("%w: %q names database %q, but a Redis Cluster has only database 0 (drop the path)", ErrBadURL, Redacted(rawURL), p)
		}
		addrs, err := splitHosts(rawURL, hosts, "6379")
		if err != nil {
			return nil, err
		}
		opts.Addrs = addrs
		opts.IsClusterMode = true
		useTLS := u.Scheme == "rediss+cluster"
		if v := u.Query().Get("tls"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%w: tls=%q in %q is not true or false", ErrBadURL, v, rawURL)
			}
			useTLS = useTLS || b
		}
		if useTLS {
			opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	case "redis+sentinel", "redis-sentinel":
		if hosts == "" {
			return nil, fmt.Errorf("%w: %q names no sentinels (want redis+sentinel://h1:26379,h2:26379/master/db)", ErrBadURL, Redacted(rawURL))
		}
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if parts[0] == "" {
			return nil, fmt.Errorf("%w: %q names no master (want redis+sentinel://h1:26379,h2:26379/master/db)", ErrBadURL, Redacted(rawURL))
		}
		if len(parts) > 2 {
			return nil, fmt.Errorf("%w: %q has too many path elements (want /master/db)", ErrBadURL, Redacted(rawURL))
		}
		opts.MasterName = parts[0]
		if len(parts) == 2 {
			db, err := parseDB(parts[1])
			if err != nil {
				return nil, err
			}
			opts.DB = db
		}
		addrs, err := splitHosts(rawURL, hosts, "26379")
		if err != nil {
			return nil, err
		}
		opts.Addrs = addrs
		opts.SentinelPassword = u.Query().Get("sentinel_password")
	default:
		return nil, fmt.Errorf("%w: scheme %q (use redis://, rediss://, redis+sentinel:// or redis+cluster://)", ErrBadURL, u.Scheme)
	}
	return opts, nil
}

// splitHosts splits a comma-separated host list, adding defaultPort to a
// host without one.
func splitHosts(rawURL, hosts, defaultPort string) ([]string, error) {
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, fmt.Errorf("%w: empty address in %q", ErrBadURL, Redacted(rawURL))
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), defaultPort)
		}
		addrs = append(addrs, h)
	}
	return addrs, nil
}

// multiHost reports whether scheme takes a comma-separated host list.
func multiHost(scheme string) bool {
	switch scheme {
	case "redis+sentinel", "redis-sentinel", "redis+cluster", "rediss+cluster":
		return true
	}
	return false
}

// parseURL parses rawURL. net/url refuses the comma-separated host list of
// the Sentinel and Cluster forms, so that list is cut out first and
// returned on its own.
func parseURL(rawURL string) (*url.URL, string, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if ok && multiHost(scheme) {
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

// Redacted returns rawURL with any password replaced, for logs and
// errors; the host lists of the Sentinel and Cluster forms are kept, and
// so is a sentinel_password's name but not its value.
func Redacted(rawURL string) string {
	u, hosts, err := parseURL(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	if q := u.Query(); q.Has("sentinel_password") {
		q.Set("sentinel_password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	r := u.Redacted()
	if multiHost(u.Scheme) {
		// parseURL put a placeholder where the host list was.
		r = strings.Replace(r, "@sentinels", "@"+hosts, 1)
		r = strings.Replace(r, "://sentinels", "://"+hosts, 1)
	}
	return r
}
