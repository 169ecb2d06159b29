package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels of a Sentinel group monitor.
const MasterName = "pfmaster"

// Sentinel is a running Sentinel group: one master, its replicas and
// three sentinels with a quorum of two.
type Sentinel struct {
	// Master is the server that was master at start.
	Master *Process
	// Replicas replicate Master.
	Replicas []*Process
	// Sentinels watch Master as MasterName.
	Sentinels []*Process
	// URL is a redis+sentinel:// URL naming every sentinel, database 0.
	URL string
}

// StartSentinel starts a master, replicas replicas of it (two when 0) and
// three sentinels that declare the master down after downAfter without an
// answer (1 s when 0), and waits until every sentinel knows every replica
// and the other sentinels.
func StartSentinel(t testing.TB, replicas int, downAfter time.Duration) *Sentinel {
	t.Helper()
	if replicas == 0 {
		replicas = 2
	}
	if downAfter == 0 {
		downAfter = time.Second
	}
	server, _ := binaries(t)
	dir := t.TempDir()
	base := func(port int) []string {
		return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no"}
	}
	s := &Sentinel{}
	// No delay before a full sync: the default waits 5 s for more replicas.
	s.Master = start(t, server, dir, "master", 0, func(port int) ([]string, string) {
		return append(base(port), "--repl-diskless-sync-delay", "0"), ""
	})
	for i := range replicas {
		s.Replicas = append(s.Replicas, start(t, server, dir, fmt.Sprintf("replica%d", i), 0, func(port int) ([]string, string) {
			return append(base(port), "--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port),
				"--repl-diskless-sync-delay", "0", "--dbfilename", fmt.Sprintf("replica%d.rdb", i)), ""
		}))
	}
	ctx := context.Background()
	for _, r := range s.Replicas {
		rc := redis.NewClient(&redis.Options{Addr: r.Addr, DisableIdentity: true})
		deadline := time.Now().Add(startTimeout)
		for {
			info, err := rc.Info(ctx, "replication").Result()
			if err == nil && strings.Contains(info, "master_link_status:up") {
				break
			}
			if time.Now().After(deadline) {
				_ = rc.Close()
				t.Fatalf("replica %s never synced with its master: %v\n%s", r.Addr, err, r.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = rc.Close()
	}
	var addrs []string
	for i := range 3 {
		p := start(t, server, dir, fmt.Sprintf("sentinel%d", i), 0, func(port int) ([]string, string) {
			// A sentinel rewrites its config file, so each has its own.
			conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
				"sentinel monitor %s 127.0.0.1 %d 2\n"+
				"sentinel down-after-milliseconds %s %d\n"+
				"sentinel failover-timeout %s 10000\n"+
				"sentinel parallel-syncs %s 1\n",
				port, dir, MasterName, s.Master.Port, MasterName, downAfter.Milliseconds(), MasterName, MasterName)
			return []string{"--sentinel"}, conf
		})
		s.Sentinels = append(s.Sentinels, p)
		addrs = append(addrs, p.Addr)
	}
	s.URL = fmt.Sprintf("redis+sentinel://%s/%s/0", strings.Join(addrs, ","), MasterName)
	// Wait until the group is whole: each sentinel sees the replicas and
	// the two other sentinels, so a failover can reach its quorum.
	for _, p := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: p.Addr, DisableIdentity: true})
		deadline := time.Now().Add(30 * time.Second)
		for {
			reps, err1 := sc.Replicas(ctx, MasterName).Result()
			sens, err2 := sc.Sentinels(ctx, MasterName).Result()
			if err1 == nil && err2 == nil && len(reps) >= replicas && len(sens) >= 2 {
				break
			}
			if time.Now().After(deadline) {
				_ = sc.Close()
				t.Fatalf("sentinel %s: %d replicas, %d sentinels known (%v, %v)\n%s", p.Addr, len(reps), len(sens), err1, err2, p.Log())
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = sc.Close()
	}
	return s
}

// Sync waits until every replica acknowledged every write the master
// took so far (WAIT), so that a failover that follows loses nothing.
// Replication is asynchronous: without it, the last writes before a
// master dies may be lost, as in production.
func (s *Sentinel) Sync(ctx context.Context) error {
	m := redis.NewClient(&redis.Options{Addr: s.Master.Addr, DisableIdentity: true})
	defer m.Close()
	n, err := m.Wait(ctx, len(s.Replicas), 10*time.Second).Result()
	if err != nil {
		return fmt.Errorf("redistest: WAIT: %w", err)
	}
	if int(n) < len(s.Replicas) {
		return fmt.Errorf("redistest: %d of %d replicas acknowledged", n, len(s.Replicas))
	}
	return nil
}

// CurrentMaster asks the first sentinel that answers for the master's
// address.
func (s *Sentinel) CurrentMaster(ctx context.Context) (string, error) {
	var last error
	for _, p := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: p.Addr, DisableIdentity: true})
		addr, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
		_ = sc.Close()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1], nil
		}
		last = err
	}
	return "", fmt.Errorf("redistest: no sentinel names the master: %w", last)
}
