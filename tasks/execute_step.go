package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/store"
)

// Step phases, as checkpointed in store.StepRun.Phase.
const (
	phaseRan      = "ran"
	phaseRebooted = "rebooted"
	phaseDone     = "done"
)

// serverRun is the typed state of one server's run.
type serverRun struct {
	x    *Executor
	e    store.Execution
	sv   store.Server
	r    *store.ServerRun
	sink *logSink
	log  *slog.Logger
	last bool
	// current is the step being worked on (-1 before the first).
	current int

	tg       Target
	values   []map[string]store.Value
	password string
}

// save checkpoints the run and announces step i's state.
func (s *serverRun) save(ctx context.Context, i int) error {
	s.sink.sync(ctx)
	if err := s.x.o.Store.PutServerRun(context.WithoutCancel(ctx), s.e, *s.r, i); err != nil {
		return fmt.Errorf("tasks: checkpoint: %w", err)
	}
	return nil
}

// steps runs every unfinished step in order.
func (s *serverRun) steps(ctx context.Context) error {
	s.current = -1
	st := s.x.o.Store
	var err error
	if s.values, err = st.ExecutionValues(ctx, s.e.ID); err != nil {
		return err
	}
	for i, step := range s.e.Steps {
		sr := &s.r.Steps[i]
		if sr.Status == store.StatusSucceeded || sr.Status == store.StatusSkipped {
			continue
		}
		s.current = i
		if step.OS != "" && step.OS != s.sv.OS {
			sr.Status = store.StatusSkipped
			if err := s.save(ctx, i); err != nil {
				return err
			}
			continue
		}
		if s.tg == nil {
			if err := s.connect(ctx); err != nil {
				return s.stepFailed(ctx, i, err)
			}
			defer func() { _ = s.tg.Close() }()
		}
		if err := s.step(ctx, i); err != nil {
			return s.stepFailed(ctx, i, err)
		}
	}
	return nil
}

// connect opens the server once per run. Its credential is read and
// opened once, here: the same secret logs in and fills
// T3.Server.Password. A store error fails the step (to be retried), so
// that a command never runs with an empty password in its place.
func (s *serverRun) connect(ctx context.Context) error {
	cred, sec, err := s.x.o.Connector.credentials(ctx, s.sv)
	if err != nil {
		return err
	}
	if s.tg, err = s.x.o.Connector.connectWith(ctx, s.sv, cred, sec); err != nil {
		return err
	}
	if cred.Kind == store.CredentialPassword {
		s.password = sec.Secret
	}
	return nil
}

// stepFailed records err on step i and returns it. A step stopped by a
// cancel is recorded cancelled, with who cancelled, and one stopped by a
// lost lease says so: not the "context canceled" the step saw.
func (s *serverRun) stepFailed(ctx context.Context, i int, err error) error {
	sr := &s.r.Steps[i]
	now := time.Now().UTC()
	status, line := store.StatusFailed, "step failed: "
	if cause := context.Cause(ctx); errors.Is(cause, ErrCancelled) || errors.Is(cause, ErrLeaseLost) {
		err, line = cause, "step stopped: "
		if errors.Is(cause, ErrCancelled) {
			status, line = store.StatusCancelled, ""
		}
	}
	sr.Status, sr.Error, sr.FinishedAt = status, reason(err), &now
	s.sink.add(i, "packflow", line+sr.Error)
	if serr := s.save(ctx, i); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// step runs step i from its last checkpoint.
func (s *serverRun) step(ctx context.Context, i int) error {
	step, sr := s.e.Steps[i], &s.r.Steps[i]
	now := time.Now().UTC()
	sr.Status, sr.Error, sr.FinishedAt = store.StatusRunning, "", nil
	sr.Attempts++
	if sr.StartedAt == nil {
		sr.StartedAt = &now
	}
	if err := s.save(ctx, i); err != nil {
		return err
	}
	if sr.Phase == "" {
		if err := s.stageAndRun(ctx, i); err != nil {
			return err
		}
	}
	if step.RebootOnSuccess && sr.Phase == phaseRan {
		s.sink.add(i, "packflow", "rebooting")
		if err := s.tg.Reboot(ctx, remote.RebootOptions{Timeout: s.x.o.RebootTimeout}); err != nil {
			return fmt.Errorf("reboot: %w", err)
		}
		sr.Rebooted, sr.Phase = true, phaseRebooted
		s.sink.add(i, "packflow", "rebooted: the server is back with a new boot id")
		if err := s.save(ctx, i); err != nil {
			return err
		}
	}
	if step.Persistent {
		sr.PersistedPath = sr.Dir
	} else if sr.Dir != "" {
		if err := s.tg.Remove(ctx, sr.Dir); err != nil {
			return fmt.Errorf("remove package: %w", err)
		}
	}
	end := time.Now().UTC()
	sr.Status, sr.Phase, sr.FinishedAt = store.StatusSucceeded, phaseDone, &end
	return s.save(ctx, i)
}

// stageAndRun is the first phase: stage, upload, render and run. On
// failure the uploaded package is removed.
func (s *serverRun) stageAndRun(ctx context.Context, i int) (err error) {
	step, sr := s.e.Steps[i], &s.r.Steps[i]
	st := s.x.o.Store
	if sr.Dir != "" && !step.Persistent {
		// Left by an attempt that died before it could clean up.
		_ = s.tg.Remove(ctx, sr.Dir)
		sr.Dir = ""
	}
	v, err := st.Version(ctx, step.Package, step.Version)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = permanent(err)
		}
		return err
	}
	s.sink.add(i, "packflow", fmt.Sprintf("staging %s %s (attempt %d)", step.Name, step.Version, sr.Attempts))
	local, err := s.x.o.Stager.Stage(ctx, v)
	if err != nil {
		return err
	}
	dir, err := s.packageDir(ctx, step)
	if err != nil {
		return err
	}
	sr.Dir = dir
	if err := s.save(ctx, i); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if rerr := s.tg.Remove(cctx, dir); rerr != nil {
				s.log.Warn("remove package after failure", "dir", dir, "err", rerr)
			} else {
				sr.Dir = ""
			}
		}
	}()
	if err := s.tg.Upload(ctx, local, dir); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	files := make(map[string]bool, len(v.Files))
	for _, f := range v.Files {
		files[path.Clean(f.Path)] = true
	}
	vals := map[string]remote.Value{}
	var secrets []string
	for k, val := range s.values[i] {
		vals[k] = remote.Value{Text: val.Text, Secret: val.Secret}
		if val.Secret && val.Text != "" {
			secrets = append(secrets, val.Text)
		}
	}
	for _, name := range step.System {
		text, secret := systemValue(name, s.e, s.sv, s.password)
		vals[name] = remote.Value{Text: text, Secret: secret}
	}
	if s.password != "" {
		secrets = append(secrets, s.password)
	}
	rendered, err := remote.Render(step.Command, remote.RenderOptions{
		Shell: ShellFor(manifest.Mode(step.Mode)), Values: vals,
		IsPackageFile: func(rel string) bool { return files[path.Clean(rel)] },
	})
	if err != nil {
		return permanent(fmt.Errorf("render command: %w", err))
	}
	masker := remote.NewMasker(append(secrets, rendered.Secrets...)...)
	s.sink.add(i, "packflow", "$ "+rendered.Masked)
	timeout := step.Timeout
	if timeout <= 0 {
		timeout = s.x.o.StepTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stdout, stderr := s.sink.writer(i, "stdout"), s.sink.writer(i, "stderr")
	mout, merr := masker.Writer(stdout), masker.Writer(stderr)
	runErr := s.tg.Run(rctx, &remote.Cmd{Command: rendered.Command, Shell: ShellFor(manifest.Mode(step.Mode)),
		Dir: dir, Stdout: mout, Stderr: merr})
	_ = mout.Close()
	_ = merr.Close()
	_ = stdout.Close()
	_ = stderr.Close()
	var exit *remote.ExitError
	switch {
	case errors.As(runErr, &exit):
		code := exit.Code
		sr.ExitCode = &code
		return fmt.Errorf("command failed: %w", runErr)
	case runErr != nil && errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("command ran past its timeout of %v: %w", timeout, remote.ErrTimeout)
	case runErr != nil:
		return fmt.Errorf("run: %w", runErr)
	}
	zero := 0
	sr.ExitCode, sr.Phase = &zero, phaseRan
	return s.save(ctx, i)
}

// packageDir makes the directory the package goes to.
func (s *serverRun) packageDir(ctx context.Context, step store.ExecStep) (string, error) {
	if step.Persistent {
		d, err := s.tg.PersistentDir(step.Package, step.Version)
		if err != nil {
			return "", permanent(err)
		}
		return d, nil
	}
	d, err := s.tg.StagingDir(ctx, "exec-"+s.e.ID)
	if err != nil {
		return "", fmt.Errorf("staging dir: %w", err)
	}
	return d, nil
}
