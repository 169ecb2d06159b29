//go:build !unix

package cache

import "os"

// dirLock stands in for flock where the platform has none: sharing a cache
// directory between processes is not supported there, and Open clears the
// whole work space.
type dirLock struct{}

func tryLockDir(path string) (*dirLock, bool, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, false, err
	}
	return &dirLock{}, true, nil
}

func (l *dirLock) isAt(path string) (bool, error) {
	_, err := os.Stat(path)
	return err == nil, err
}

func (l *dirLock) release() {}
