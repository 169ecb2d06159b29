package blob

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
)

// memBackend keeps blobs in memory. Stored slices are never modified, so
// open readers keep seeing the content they opened.
type memBackend struct {
	mu    sync.RWMutex
	blobs map[string][]byte
}

func newMem() *memBackend { return &memBackend{blobs: map[string][]byte{}} }

func (m *memBackend) String() string { return "mem://" }

func (m *memBackend) put(ctx context.Context, key string, r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[key] = buf.Bytes()
	return nil
}

func (m *memBackend) open(ctx context.Context, key string) (*Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, ok := m.blobs[key]
	if !ok {
		return nil, ErrNotFound
	}
	return &Object{r: bytes.NewReader(b), size: int64(len(b))}, nil
}

func (m *memBackend) delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, key)
	return nil
}

func (m *memBackend) list(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var keys []string
	for k := range m.blobs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func (m *memBackend) ready(ctx context.Context) error { return ctx.Err() }
