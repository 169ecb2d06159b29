package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/packflow/packflow/internal/sshdtest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/ssh"
)

// SSHSuite measures packflow's SSH communicator against OpenSSH's own
// tools on a real sshd started for the run, same key, same host, same run:
//   - uploading a tree (50 MiB in 200 files): packflow's Dial+Upload
//     throughput against scp -r (goal ≥ 1.0×);
//   - 100 sequential fresh connect+run "true": packflow's Dial+Run+Close
//     against "ssh host true" (goal ≥ 1.0×, lower time is better).
//
// Each figure is the best of a few runs.
func SSHSuite() Suite {
	return Suite{Name: "ssh", Run: runSSH}
}

// sshWorkload sizes the benchmark.
type sshWorkload struct {
	files, bytes int // upload tree
	uploadRuns   int
	roundTrips   int
	tripRuns     int
}

func runSSH(ctx context.Context, env *Env) ([]Result, error) {
	w := sshWorkload{files: 200, bytes: 50 << 20, uploadRuns: 5, roundTrips: 100, tripRuns: 2}
	if env.Quick {
		w = sshWorkload{files: 8, bytes: 256 << 10, uploadRuns: 1, roundTrips: 3, tripRuns: 1}
	}
	for _, tool := range []string{"ssh", "scp"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("bench: ssh: %s is needed for the baseline: %w", tool, err)
		}
	}
	srv, err := sshdtest.Launch(ctx, sshdtest.Options{Dir: filepath.Join(env.Dir, "sshd")})
	if err != nil {
		return nil, fmt.Errorf("bench: ssh: start sshd: %w", err)
	}
	defer func() { _ = srv.Close() }()
	b := &sshBench{env: env, srv: srv, w: w}
	b.opts = ssh.Options{
		Addr:    srv.Addr(0),
		User:    srv.User,
		Auth:    ssh.Auth{PrivateKeyPEM: srv.ClientKeyPEM},
		HostKey: ssh.HostKeyPolicy{KnownHostsFile: srv.KnownHostsFile},
		Logger:  env.Log,
	}
	upload, err := b.upload(ctx)
	if err != nil {
		return nil, err
	}
	trips, err := b.roundTrips(ctx)
	if err != nil {
		return nil, err
	}
	return []Result{upload, trips}, nil
}

type sshBench struct {
	env  *Env
	srv  *sshdtest.Server
	w    sshWorkload
	opts ssh.Options
}

// openSSHArgs are the options both ssh and scp get: the same key and the
// same known_hosts file, strictly checked, never prompting. GSSAPI (on in
// Debian's ssh_config) is turned off, and the key exchange is the one
// packflow negotiates (curve25519-sha256): OpenSSH 9.2's default,
// sntrup761x25519, costs about 200 ms more per connection here, and the
// comparison is about the clients, not the key exchange.
func (b *sshBench) openSSHArgs() []string {
	return []string{
		"-i", b.srv.ClientKeyFile,
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + b.srv.KnownHostsFile,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "GSSAPIAuthentication=no",
		"-o", "KexAlgorithms=curve25519-sha256",
	}
}

func (b *sshBench) hostPort() (string, string) {
	host, port, _ := net.SplitHostPort(b.srv.Addr(0))
	return host, port
}

func (b *sshBench) upload(ctx context.Context) (Result, error) {
	src := filepath.Join(b.env.Dir, "ssh-upload-src")
	if err := writeSSHTree(src, b.w.files, b.w.bytes); err != nil {
		return Result{}, fmt.Errorf("bench: ssh: %w", err)
	}
	host, port := b.hostPort()
	var best, bestSCP time.Duration
	for i := range b.w.uploadRuns {
		dst := filepath.Join(b.env.Dir, fmt.Sprintf("ssh-upload-pf-%d", i))
		d, err := timed(func() error {
			c, err := ssh.Dial(ctx, b.opts)
			if err != nil {
				return err
			}
			defer func() { _ = c.Close() }()
			return c.Upload(ctx, src, dst)
		})
		if err != nil {
			return Result{}, fmt.Errorf("bench: ssh: packflow upload: %w", err)
		}
		best = minPositive(best, d)
		if err := os.RemoveAll(dst); err != nil {
			return Result{}, fmt.Errorf("bench: ssh: %w", err)
		}

		dst = filepath.Join(b.env.Dir, fmt.Sprintf("ssh-upload-scp-%d", i))
		args := append(b.openSSHArgs(), "-q", "-r", "-P", port, src, b.srv.User+"@"+host+":"+dst)
		d, err = timed(func() error { return runTool(ctx, "scp", args...) })
		if err != nil {
			return Result{}, fmt.Errorf("bench: ssh: scp -r: %w", err)
		}
		bestSCP = minPositive(bestSCP, d)
		if err := os.RemoveAll(dst); err != nil {
			return Result{}, fmt.Errorf("bench: ssh: %w", err)
		}
	}
	mb := float64(b.w.bytes) / 1e6
	r := NewResult(fmt.Sprintf("ssh upload %d MiB in %d files", b.w.bytes>>20, b.w.files), "MB/s",
		mb/best.Seconds(), "scp -r", mb/bestSCP.Seconds(), Higher)
	r.Goal = 1.0
	r.Note = fmt.Sprintf("best of %d; packflow %v, scp %v, connect included", b.w.uploadRuns,
		best.Round(time.Millisecond), bestSCP.Round(time.Millisecond))
	return r, nil
}

func (b *sshBench) roundTrips(ctx context.Context) (Result, error) {
	host, port := b.hostPort()
	sshArgs := append(b.openSSHArgs(), "-p", port, b.srv.User+"@"+host, "true")
	var best, bestSSH time.Duration
	for range b.w.tripRuns {
		d, err := timed(func() error {
			for range b.w.roundTrips {
				if err := connectRunTrue(ctx, b.opts); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return Result{}, fmt.Errorf("bench: ssh: packflow round trip: %w", err)
		}
		best = minPositive(best, d)

		d, err = timed(func() error {
			for range b.w.roundTrips {
				if err := runTool(ctx, "ssh", sshArgs...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return Result{}, fmt.Errorf("bench: ssh: ssh host true: %w", err)
		}
		bestSSH = minPositive(bestSSH, d)
	}
	r := NewResult(fmt.Sprintf("ssh %d× connect+run true", b.w.roundTrips), "s",
		best.Seconds(), "ssh host true", bestSSH.Seconds(), Lower)
	r.Goal = 1.0
	r.Note = fmt.Sprintf("best of %d; %.1f ms vs %.1f ms per round trip", b.w.tripRuns,
		float64(best.Microseconds())/1e3/float64(b.w.roundTrips),
		float64(bestSSH.Microseconds())/1e3/float64(b.w.roundTrips))
	return r, nil
}

// connectRunTrue is one fresh connection running "true".
func connectRunTrue(ctx context.Context, opts ssh.Options) error {
	c, err := ssh.Dial(ctx, opts)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	return c.Run(ctx, &remote.Cmd{Command: "true"})
}

func runTool(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// writeSSHTree writes files of random (incompressible) content adding up
// to size bytes, spread over a few directories, with a mix of modes.
func writeSSHTree(root string, files, size int) error {
	if err := os.MkdirAll(root, 0o755); err != nil { //nolint:gosec // a scratch tree of random data
		return err
	}
	buf := make([]byte, size/files)
	for i := range files {
		dir := filepath.Join(root, fmt.Sprintf("dir%02d", i%10))
		if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // a scratch tree of random data
			return err
		}
		n := size / files
		if i == files-1 {
			n = size - n*(files-1)
			buf = make([]byte, n)
		}
		_, _ = rand.Read(buf[:n]) // never fails (crypto/rand)
		mode := os.FileMode(0o644)
		if i%7 == 0 {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%03d.bin", i)), buf[:n], mode); err != nil {
			return err
		}
	}
	return nil
}
