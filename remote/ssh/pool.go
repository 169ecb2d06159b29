package ssh

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// PoolOptions configures a Pool.
type PoolOptions struct {
	// Logger is used for hosts whose Options carry no logger.
	Logger *slog.Logger
}

// Pool shares one connection per host between the Clients it hands out.
// A host is identified by address, user, credentials, host key policy and
// the Sudo flag; the other Options of the first Get for a host are kept.
// It is safe for concurrent use.
type Pool struct {
	opts PoolOptions

	mu     sync.Mutex
	hosts  map[string]*hostConn
	closed bool
}

// NewPool returns an empty Pool.
func NewPool(opts PoolOptions) *Pool {
	return &Pool{opts: opts, hosts: make(map[string]*hostConn)}
}

// Get returns a Client for the host of opts, connecting when the pool holds
// no live connection to it. Closing the Client does not close the shared
// connection; Pool.Close does.
func (p *Pool) Get(ctx context.Context, opts Options) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = p.opts.Logger
	}
	full, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	key := full.poolKey()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("ssh: pool closed")
	}
	h, ok := p.hosts[key]
	if !ok {
		h, err = newHostConn(opts)
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
		p.hosts[key] = h
	}
	p.mu.Unlock()

	if _, err := h.acquire(ctx); err != nil {
		return nil, err
	}
	h.release()
	return &Client{h: h, pooled: true}, nil
}

// Len returns the number of hosts the pool knows.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.hosts)
}

// Close closes every connection; Clients from the pool fail afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	hosts := p.hosts
	p.hosts = map[string]*hostConn{}
	p.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, h.close())
	}
	return errors.Join(errs...)
}
