package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/internal/sshdtest"
	"github.com/packflow/packflow/remote/ssh"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

// deployBenchDB is the database of the bench's redis-server the deploy
// suite uses; it is flushed before and after.
const deployBenchDB = 3

// deployUUID is the package the deploy suite deploys.
const deployUUID = "3f6c2b8e-9d41-4a7e-b5c0-1e2d3c4b5a69"

// deployScript is the package's command: it checks the payload arrived.
const deployScript = "#!/bin/sh\ntest -s payload.bin && echo deployed\n"

// DeploySuite deploys a 1 MiB package (copy it, run its script from the
// package directory, remove it) to 100 hosts: 100 loopback addresses
// served by stock OpenSSH (seven sshd processes, at most 15 addresses
// each), same keys and known_hosts for every tool, in the same run:
//   - packflow: a blueprint deployment through the queue, one worker of
//     this process, checkpoints and log stream included, from the deploy
//     call until every server's run is recorded as succeeded;
//   - Ansible (ansible-playbook: copy, command, file state=absent;
//     forks=100, pipelining on, host key checking on), goal ≥ 10×;
//   - a parallel shell loop (xargs -P 100: scp -r, ssh to run, ssh to
//     rm), goal ≥ 1×.
func DeploySuite() Suite { return deploySuiteOn(deployBenchDB) }

func deploySuiteOn(db int) Suite {
	return Suite{Name: "deploy", Run: func(ctx context.Context, env *Env) ([]Result, error) {
		return runDeploy(ctx, env, db)
	}}
}

type deployBench struct {
	env   *Env
	srv   *sshdtest.Server
	dir   string
	pkg   string // the package tree
	hosts int
	db    int
}

func runDeploy(ctx context.Context, env *Env, db int) (results []Result, err error) {
	hosts := 100
	if env.Quick {
		hosts = 4
	}
	for _, tool := range []string{"ssh", "scp", "xargs", "ansible-playbook"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("bench: deploy: %s is needed for the baseline: %w", tool, err)
		}
	}
	b := &deployBench{env: env, dir: filepath.Join(env.Dir, "deploy"), hosts: hosts, db: db}
	defer func() { err = errors.Join(err, os.RemoveAll(b.dir)) }()
	addrs := make([]string, hosts)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.%d.%d", 60+i/200, 1+i%200)
	}
	b.srv, err = sshdtest.Launch(ctx, sshdtest.Options{Addrs: addrs, Dir: filepath.Join(b.dir, "sshd")})
	if err != nil {
		return nil, fmt.Errorf("bench: deploy: start sshd: %w", err)
	}
	defer func() { _ = b.srv.Close() }()
	b.pkg = filepath.Join(b.dir, "pkg")
	if err := b.writePackage(); err != nil {
		return nil, err
	}
	pf, err := b.packflow(ctx)
	if err != nil {
		return nil, err
	}
	ans, err := b.ansible(ctx)
	if err != nil {
		return nil, err
	}
	loop, err := b.shellLoop(ctx)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("deploy 1 MiB package to %d hosts", hosts)
	r1 := NewResult(name, "s", pf.Seconds(), "ansible-playbook forks=100", ans.Seconds(), Lower)
	r1.Goal = 10
	r2 := NewResult(name, "s", pf.Seconds(), "scp+ssh+ssh rm, xargs -P 100", loop.Seconds(), Lower)
	r2.Goal = 1
	return []Result{r1, r2}, nil
}

// writePackage writes the package tree: 1 MiB of random data, the script
// and the manifest.
func (b *deployBench) writePackage() error {
	if err := os.MkdirAll(b.pkg, 0o750); err != nil {
		return fmt.Errorf("bench: deploy: %w", err)
	}
	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	manifestXML := `<?xml version="1.0" encoding="UTF-8"?>
<Manifest>
  <Metadata><UUID>` + deployUUID + `</UUID><Name>Deploy Bench</Name><Description>1 MiB payload</Description></Metadata>
  <Parameters/>
  <Execution><Mode>Ssh</Mode><Command>./run.sh</Command><Persistent>false</Persistent></Execution>
</Manifest>
`
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"payload.bin", payload, 0o644}, {"run.sh", []byte(deployScript), 0o755}, {"package.manifest", []byte(manifestXML), 0o644}} {
		if err := os.WriteFile(filepath.Join(b.pkg, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("bench: deploy: %w", err)
		}
	}
	return nil
}

// zipPackage returns the package tree as a .zip.
func (b *deployBench) zipPackage() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"package.manifest", "payload.bin", "run.sh"} {
		data, err := os.ReadFile(filepath.Join(b.pkg, name))
		if err != nil {
			return nil, err
		}
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o644)
		if name == "run.sh" {
			h.SetMode(0o755)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// packflow publishes the package, records the hosts and times one
// deployment from the deploy call until every run succeeded.
func (b *deployBench) packflow(ctx context.Context) (d time.Duration, err error) {
	rdb := redis.NewClient(&redis.Options{Addr: b.env.RedisAddr, DB: b.db, DisableIdentity: true, PoolSize: 200})
	defer func() { _ = rdb.Close() }()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return 0, fmt.Errorf("bench: deploy: redis at %s: %w", b.env.RedisAddr, err)
	}
	defer func() { err = errors.Join(err, rdb.FlushDB(context.WithoutCancel(ctx)).Err()) }()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	box, err := secretbox.New(key)
	if err != nil {
		return 0, err
	}
	st := store.New(rdb, store.Options{Secrets: box})
	bs, err := blob.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(b.dir, "blobs")))
	if err != nil {
		return 0, fmt.Errorf("bench: deploy: %w", err)
	}
	v, err := b.publish(ctx, st, bs)
	if err != nil {
		return 0, err
	}
	servers, err := b.servers(ctx, st)
	if err != nil {
		return 0, err
	}
	log := b.env.Log
	remoteDir := filepath.Join(b.dir, "remote-packflow")
	if err := os.MkdirAll(remoteDir, 0o750); err != nil {
		return 0, fmt.Errorf("bench: deploy: %w", err)
	}
	conn, err := tasks.NewConnector(tasks.ConnectorOptions{Store: st, Logger: log,
		SSHOptions: ssh.Options{StagingBase: remoteDir, PersistentBase: filepath.Join(remoteDir, "persistent")}})
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close() }()
	ex, err := tasks.NewExecutor(tasks.ExecuteOptions{Store: st, Connector: conn, Logger: log,
		Stager: &tasks.BlobStager{Blob: bs, Dir: filepath.Join(b.dir, "stage")}})
	if err != nil {
		return 0, err
	}
	w, err := worker.New(worker.Options{Redis: rdb, Store: st, NodeID: "bench-deploy", Concurrency: 2 * b.hosts,
		Datacenters: []string{store.DefaultDatacenter}, Logger: log,
		Handlers: tasks.Handlers(tasks.Deps{Store: st, Blob: bs, Logger: log, Executor: ex})})
	if err != nil {
		return 0, err
	}
	if err := w.Start(ctx); err != nil {
		return 0, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, w.Shutdown(sctx))
	}()
	client := tasks.NewClient(rdb, st, log)
	start := time.Now()
	e, _, err := tasks.Deploy(ctx, st, client, tasks.DeployRequest{AccountID: store.RootAccountID, AccountName: "root", User: "bench",
		Steps: []tasks.StepRef{{Package: v.PackageID, Version: v.Version}}, Servers: servers, Visible: servers})
	if err != nil {
		return 0, fmt.Errorf("bench: deploy: %w", err)
	}
	if err := waitRuns(ctx, st, e.ID); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// waitRuns waits until every run of execution id has ended and fails
// unless all succeeded.
func waitRuns(ctx context.Context, st *store.Store, id string) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		e, err := st.Execution(ctx, id)
		if err != nil {
			return err
		}
		runs, err := st.ServerRuns(ctx, e)
		if err != nil {
			return err
		}
		switch store.ExecutionStatus(runs) {
		case store.StatusSucceeded:
			return nil
		case store.StatusFailed, store.StatusCancelled:
			for _, r := range runs {
				if r.Status != store.StatusSucceeded {
					return fmt.Errorf("bench: deploy: %s: %s", r.Name, r.Error)
				}
			}
		}
		if time.Now().After(deadline) {
			return errors.New("bench: deploy: the execution did not finish in 10 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// publish stores the archive and publishes it through the publish task.
func (b *deployBench) publish(ctx context.Context, st *store.Store, bs *blob.Store) (store.Version, error) {
	archive, err := b.zipPackage()
	if err != nil {
		return store.Version{}, fmt.Errorf("bench: deploy: %w", err)
	}
	if _, err := st.EnsureRootAccount(ctx); err != nil {
		return store.Version{}, err
	}
	info, err := bs.Put(ctx, blob.UploadKey("deploy-bench"), bytes.NewReader(archive))
	if err != nil {
		return store.Version{}, err
	}
	if _, err := st.CreateUpload(ctx, store.Upload{ID: "deploy-bench", AccountID: store.RootAccountID, BlobKey: info.Key,
		SHA256: info.SHA256, Size: info.Size, CreatedBy: "bench"}); err != nil {
		return store.Version{}, err
	}
	u, err := st.BeginPublish(ctx, "deploy-bench", store.PublishOptions{Category: "script", OS: "linux",
		OSVersions: []string{"debian-12"}, Visibility: store.VisibilityPrivate})
	if err != nil {
		return store.Version{}, err
	}
	task, _, err := tasks.NewPublishTask(u)
	if err != nil {
		return store.Version{}, err
	}
	h, err := tasks.NewPublishHandler(tasks.PublishOptions{Store: st, Blob: bs, Logger: b.env.Log})
	if err != nil {
		return store.Version{}, err
	}
	if err := h.ProcessTask(ctx, asynq.NewTask(task.Type(), task.Payload())); err != nil {
		return store.Version{}, fmt.Errorf("bench: deploy: publish: %w", err)
	}
	if u, err = st.Upload(ctx, "deploy-bench"); err != nil {
		return store.Version{}, err
	}
	return st.Version(ctx, u.PackageID, u.Version)
}

// servers records every host with the client key and its pinned host key.
func (b *deployBench) servers(ctx context.Context, st *store.Store) ([]store.Server, error) {
	cred, err := st.CreateCredential(ctx, store.Credential{AccountID: store.RootAccountID, Name: "bench", Kind: store.CredentialSSHKey,
		Username: b.srv.User}, store.Secret{Secret: string(b.srv.ClientKeyPEM)})
	if err != nil {
		return nil, err
	}
	out := make([]store.Server, 0, b.srv.Len())
	for i, addr := range b.srv.Addrs() {
		host, port, _ := net.SplitHostPort(addr)
		var p int
		_, _ = fmt.Sscan(port, &p)
		sv, err := st.CreateServer(ctx, store.Server{AccountID: store.RootAccountID, Name: fmt.Sprintf("host%03d", i), Address: host,
			Port: p, OS: "linux", Transport: store.TransportSSH, CredentialID: cred.ID, HostKey: b.srv.HostKey})
		if err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	return out, nil
}

// ansible runs the same deployment as a playbook.
func (b *deployBench) ansible(ctx context.Context) (time.Duration, error) {
	dir := filepath.Join(b.dir, "ansible")
	remoteDir := filepath.Join(b.dir, "remote-ansible")
	for _, d := range []string{dir, remoteDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return 0, fmt.Errorf("bench: deploy: %w", err)
		}
	}
	var inv strings.Builder
	inv.WriteString("[hosts]\n")
	for i, addr := range b.srv.Addrs() {
		host, port, _ := net.SplitHostPort(addr)
		fmt.Fprintf(&inv, "host%03d ansible_host=%s ansible_port=%s\n", i, host, port)
	}
	cfg := fmt.Sprintf(`[defaults]
inventory = %s
forks = 100
host_key_checking = True
gathering = explicit
interpreter_python = /usr/bin/python3
remote_user = %s
private_key_file = %s
retry_files_enabled = False
[ssh_connection]
pipelining = True
control_path_dir = %s
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o GSSAPIAuthentication=no -o KexAlgorithms=curve25519-sha256
`, filepath.Join(dir, "hosts"), b.srv.User, b.srv.ClientKeyFile, filepath.Join(dir, "cp"), b.srv.KnownHostsFile)
	play := fmt.Sprintf(`- hosts: hosts
  tasks:
    - copy: {src: "%s/", dest: "%s/{{ inventory_hostname }}/", mode: preserve}
    - command: ./run.sh
      args: {chdir: "%s/{{ inventory_hostname }}"}
    - file: {path: "%s/{{ inventory_hostname }}", state: absent}
`, b.pkg, remoteDir, remoteDir, remoteDir)
	for name, data := range map[string]string{"hosts": inv.String(), "ansible.cfg": cfg, "deploy.yml": play} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return 0, fmt.Errorf("bench: deploy: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, "ansible-playbook", filepath.Join(dir, "deploy.yml"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	d, err := timed(cmd.Run)
	closeControlMasters(ctx, filepath.Join(dir, "cp"))
	if err != nil {
		return 0, fmt.Errorf("bench: deploy: ansible-playbook: %w: %s", err, tail(out.String(), 2000))
	}
	return d, nil
}

// closeControlMasters ends the SSH connections Ansible keeps open for
// reuse (ControlPersist), so that sshd can stop at once.
func closeControlMasters(ctx context.Context, dir string) {
	socks, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, s := range socks {
		_ = exec.CommandContext(ctx, "ssh", "-O", "exit", "-o", "ControlPath="+s, "unused").Run()
	}
}

// shellLoop runs the deployment as scp + ssh + ssh rm per host, 100 at a
// time with xargs.
func (b *deployBench) shellLoop(ctx context.Context) (time.Duration, error) {
	dir := filepath.Join(b.dir, "loop")
	remoteDir := filepath.Join(b.dir, "remote-loop")
	for _, d := range []string{dir, remoteDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return 0, fmt.Errorf("bench: deploy: %w", err)
		}
	}
	opts := fmt.Sprintf("-i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes -o GSSAPIAuthentication=no -o KexAlgorithms=curve25519-sha256",
		b.srv.ClientKeyFile, b.srv.KnownHostsFile)
	script := fmt.Sprintf(`#!/bin/sh
set -e
host=$1 port=$2 dst=%s/$1-$2
scp -q -r -P "$port" %s %s "$USER_AT$host:$dst"
ssh -p "$port" %s "$USER_AT$host" "cd $dst && ./run.sh" >/dev/null
ssh -p "$port" %s "$USER_AT$host" "rm -rf $dst"
`, remoteDir, opts, b.pkg, opts, opts)
	script = strings.ReplaceAll(script, "$USER_AT", b.srv.User+"@")
	if err := os.WriteFile(filepath.Join(dir, "one.sh"), []byte(script), 0o700); err != nil { //nolint:gosec // a script to run
		return 0, fmt.Errorf("bench: deploy: %w", err)
	}
	var list strings.Builder
	for _, addr := range b.srv.Addrs() {
		host, port, _ := net.SplitHostPort(addr)
		fmt.Fprintf(&list, "%s %s\n", host, port)
	}
	cmd := exec.CommandContext(ctx, "xargs", "-P", "100", "-L", "1", filepath.Join(dir, "one.sh"))
	cmd.Stdin = strings.NewReader(list.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &out
	d, err := timed(cmd.Run)
	if err != nil {
		return 0, fmt.Errorf("bench: deploy: shell loop: %w: %s", err, tail(out.String(), 2000))
	}
	return d, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
