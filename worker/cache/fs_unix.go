//go:build unix

package cache

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// dirLock is an exclusive flock on a directory, held through an open file.
type dirLock struct{ f *os.File }

// tryLock takes an exclusive lock on the open directory f without
// waiting; ok is false when another open file description holds it. The
// lock owns f when taken; otherwise f is closed.
func tryLock(f *os.File) (l *dirLock, ok bool, err error) {
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return &dirLock{f: f}, true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		_ = f.Close()
		return nil, false, nil
	}
	_ = f.Close()
	return nil, false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
}

// isAt tells whether the locked directory is still the one at path.
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

// release drops the lock.
func (l *dirLock) release() { _ = l.f.Close() }
