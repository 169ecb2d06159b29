package cache

import (
	"fmt"

	"github.com/packflow/packflow/manifest"
)

// validUUID tells whether s is a lower-case 8-4-4-4-12 hex UUID, the form
// the library records.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isLowerHex(c) {
				return false
			}
		}
	}
	return true
}

// validVersion tells whether s is a revision number ("1", "12") or a
// canonical semantic version ("1.2.0", "2.0.0-rc.1+build.5").
func validVersion(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	if isRevision(s) {
		return true
	}
	v, err := manifest.ParseVersion(s)
	return err == nil && v.String() == s
}

// isRevision tells whether s is a decimal number without leading zeros.
func isRevision(s string) bool {
	if s == "" || len(s) > 18 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validSHA256 tells whether s is 64 lower-case hex digits.
func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

func isLowerHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
}

// checkRef returns an error wrapping ErrInvalidRef when uuid or version is
// not valid.
func checkRef(uuid, version string) error {
	if !validUUID(uuid) {
		return fmt.Errorf("%w: UUID %q is not a lower-case 8-4-4-4-12 hex UUID", ErrInvalidRef, uuid)
	}
	if !validVersion(version) {
		return fmt.Errorf("%w: version %q is neither a revision number nor a canonical semantic version", ErrInvalidRef, version)
	}
	return nil
}
