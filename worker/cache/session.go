package cache

import (
	"errors"
	"fmt"
	"os"
)

// session is this process's work space under <cache>/.tmp, locked while
// the cache is open so that other processes opening the cache leave it
// alone.
type session struct {
	dir  string
	lock *dirLock
}

// newSession creates and locks a fresh session directory in tmp.
func newSession(tmp string) (*session, error) {
	for range 10 {
		dir, err := os.MkdirTemp(tmp, "s-")
		if err != nil {
			return nil, fmt.Errorf("cache: work space: %w", err)
		}
		f, err := os.Open(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue // another process's Open removed it before our lock
		}
		if err != nil {
			return nil, fmt.Errorf("cache: work space: %w", err)
		}
		l, ok, err := tryLock(f)
		if err != nil {
			return nil, fmt.Errorf("cache: work space: %w", err)
		}
		if !ok {
			continue // another process's Open holds it to remove it
		}
		// That Open may have removed it between our open and our lock:
		// check that the locked directory is still the one at dir.
		if still, err := l.isAt(dir); err != nil || !still {
			l.release()
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("cache: work space: %w", err)
			}
			continue
		}
		return &session{dir: dir, lock: l}, nil
	}
	return nil, errors.New("cache: work space: could not create a session directory")
}

// workDir creates a fresh directory in the session.
func (s *session) workDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp(s.dir, prefix)
	if err != nil {
		return "", fmt.Errorf("cache: work space: %w", err)
	}
	return dir, nil
}

// close removes the session's directory and releases its lock.
func (s *session) close() error {
	err := os.RemoveAll(s.dir)
	s.lock.release()
	if err != nil {
		return fmt.Errorf("cache: remove work space: %w", err)
	}
	return nil
}
