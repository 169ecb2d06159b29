package tasks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
)

// Stager puts a package version's tree on the worker and returns its
// root. The tree is read-only for the caller.
type Stager interface {
	Stage(ctx context.Context, v store.Version) (string, error)
}

// InstallerStager stages from the node's install cache, installing the
// version (and what it requires) when the node lacks it.
type InstallerStager struct{ Installer *Installer }

// Stage returns the cached tree of v.
func (s InstallerStager) Stage(ctx context.Context, v store.Version) (string, error) {
	entries, err := s.Installer.Ensure(ctx, VersionRef{UUID: v.PackageID, Version: v.Version})
	if err != nil {
		return "", fmt.Errorf("tasks: stage %s@%s: %w", v.PackageID, v.Version, err)
	}
	for _, e := range entries {
		if e.UUID == v.PackageID && e.Version == v.Version {
			return e.Path, nil
		}
	}
	return "", fmt.Errorf("tasks: stage %s@%s: not in the install cache", v.PackageID, v.Version)
}

// BlobStager stages by unpacking archives from the blob store into Dir,
// one tree per archive digest, kept for the life of the process. It
// serves workers without an install cache.
type BlobStager struct {
	Blob   *blob.Store
	Dir    string
	Limits manifest.Limits

	mu    sync.Mutex
	trees map[string]*stagedTree
}

type stagedTree struct {
	once sync.Once
	path string
	err  error
}

// Stage returns the unpacked tree of v.
func (s *BlobStager) Stage(ctx context.Context, v store.Version) (string, error) {
	if v.SHA256 == "" || v.BlobKey == "" {
		return "", errors.New("tasks: stage: the version has no archive")
	}
	s.mu.Lock()
	if s.trees == nil {
		s.trees = map[string]*stagedTree{}
	}
	t, ok := s.trees[v.SHA256]
	if !ok {
		t = &stagedTree{}
		s.trees[v.SHA256] = t
	}
	s.mu.Unlock()
	t.once.Do(func() { t.path, t.err = s.unpack(ctx, v) })
	if t.err != nil {
		s.mu.Lock()
		delete(s.trees, v.SHA256) // let a later attempt try again
		s.mu.Unlock()
	}
	return t.path, t.err
}

func (s *BlobStager) unpack(ctx context.Context, v store.Version) (string, error) {
	dst := filepath.Join(s.Dir, v.SHA256)
	if _, err := os.Stat(filepath.Join(dst, "package.manifest")); err == nil {
		return dst, nil
	}
	o, err := s.Blob.Open(ctx, v.BlobKey)
	if err != nil {
		return "", fmt.Errorf("tasks: stage %s@%s: %w", v.PackageID, v.Version, err)
	}
	defer func() { _ = o.Close() }() // read-only
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", fmt.Errorf("tasks: stage: %w", err)
	}
	tmp, err := os.MkdirTemp(s.Dir, ".unpack-")
	if err != nil {
		return "", fmt.Errorf("tasks: stage: %w", err)
	}
	limits := s.Limits
	if limits.MaxArchiveSize == 0 {
		limits = manifest.DefaultLimits()
	}
	if err := manifest.Extract(ctx, o, o.Size(), tmp, limits); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("tasks: stage %s@%s: %w", v.PackageID, v.Version, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.RemoveAll(tmp)
		if _, serr := os.Stat(dst); serr == nil {
			return dst, nil // another process unpacked it first
		}
		return "", fmt.Errorf("tasks: stage: %w", err)
	}
	return dst, nil
}
