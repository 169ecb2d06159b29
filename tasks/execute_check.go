package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/store"
)

// TypeServerCheck is the task type of POST /servers/{id}/check.
const TypeServerCheck = "server:check"

// ServerCheckPayload is the payload of server:check.
type ServerCheckPayload struct {
	ServerID string `json:"server_id"`
}

// ServerCheckResult is what server:check writes as its result.
type ServerCheckResult struct {
	OK        bool   `json:"ok"`
	LatencyMS int64  `json:"latency_ms"`
	HostKey   string `json:"host_key,omitempty"`
	Error     string `json:"error,omitempty"`
}

// NewServerCheckTask returns the server:check task of sv, for the exec
// queue of its datacenter. A check is not retried: its answer is the
// result.
func NewServerCheckTask(sv store.Server) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(ServerCheckPayload{ServerID: sv.ID})
	if err != nil {
		return nil, nil, fmt.Errorf("tasks: encode check payload: %w", err)
	}
	dc := sv.Datacenter
	if dc == "" {
		dc = store.DefaultDatacenter
	}
	return asynq.NewTask(TypeServerCheck, b), []asynq.Option{
		asynq.Queue(ExecQueue(dc)), asynq.MaxRetry(0), asynq.Timeout(2 * time.Minute),
	}, nil
}

// checkHandler connects to a server, verifies its identity (recording the
// host key on first use), runs a no-op and reports the latency.
func checkHandler(st *store.Store, conn *Connector) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p ServerCheckPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return permanent(fmt.Errorf("tasks: server check payload: %w", err))
		}
		sv, err := st.Server(ctx, p.ServerID)
		if err != nil {
			return permanent(fmt.Errorf("tasks: server check: %w", err))
		}
		res := checkServer(ctx, conn, sv)
		b, err := json.Marshal(res)
		if err != nil {
			return fmt.Errorf("tasks: encode check result: %w", err)
		}
		if w := t.ResultWriter(); w != nil {
			if _, err := w.Write(b); err != nil {
				return fmt.Errorf("tasks: write check result: %w", err)
			}
		}
		return nil
	}
}

func checkServer(ctx context.Context, conn *Connector, sv store.Server) ServerCheckResult {
	start := time.Now()
	tg, err := conn.Connect(ctx, sv)
	if err != nil {
		return ServerCheckResult{Error: reason(err)}
	}
	defer func() { _ = tg.Close() }()
	cmd := &remote.Cmd{Command: "exit 0", Shell: remote.ShellPOSIX}
	if sv.OS == "windows" {
		cmd = &remote.Cmd{Command: "exit 0", Shell: remote.ShellPowerShell}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := tg.Run(ctx, cmd); err != nil {
		return ServerCheckResult{HostKey: tg.HostKey(), Error: err.Error()}
	}
	return ServerCheckResult{OK: true, LatencyMS: time.Since(start).Milliseconds(), HostKey: tg.HostKey()}
}
