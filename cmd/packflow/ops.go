package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// opsServer serves /metrics and /healthz for a process without the API
// (a worker), so that Prometheus can scrape every node, and /readyz when
// ready is set.
type opsServer struct {
	addr string
	reg  *prometheus.Registry
	log  *slog.Logger
	// ready, when set, answers /readyz: nil is 200, an error 503.
	ready func() error

	mu     sync.Mutex
	srv    *http.Server
	served chan struct{}
}

func newOpsServer(addr string, reg *prometheus.Registry, log *slog.Logger) *opsServer {
	return &opsServer{addr: addr, reg: reg, log: log}
}

// Start listens and serves in the background.
func (o *opsServer) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.addr)
	if err != nil {
		return fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(o.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	if o.ready != nil {
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if err := o.ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				b, _ := json.Marshal(map[string]string{"status": "not ready", "reason": err.Error()})
				_, _ = w.Write(append(b, '\n'))
				return
			}
			_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
		})
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.log.Handler(), slog.LevelWarn),
	}
	served := make(chan struct{})
	o.mu.Lock()
	o.srv, o.served = srv, served
	o.mu.Unlock()
	o.log.Info("metrics listening", "addr", ln.Addr().String())
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Error("metrics stopped serving", "err", err)
		}
	}()
	return nil
}

// Shutdown stops serving.
func (o *opsServer) Shutdown(ctx context.Context) error {
	o.mu.Lock()
	srv, served := o.srv, o.served
	o.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	<-served
	if err != nil {
		return fmt.Errorf("metrics shutdown: %w", err)
	}
	return nil
}
