//go:build !unix

package cache

import "os"

// dirLock stands in for flock where the platform has none: sharing a cache
// directory between processes is not supported there, and Open clears the
// whole work space.
type dirLock struct{ f *os.File }

func tryLock(f *os.File) (*dirLock, bool, error) { return &dirLock{f: f}, true, nil }

func (l *dirLock) isAt(path string) (bool, error) {
	held, err := l.f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
}

func (l *dirLock) release() { _ = l.f.Close() }
