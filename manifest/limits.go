package manifest

import (
	"fmt"
	"io/fs"
)

// Default limits; see Limits.
const (
	DefaultMaxArchiveSize = 64 << 20
	DefaultMaxEntries     = 10000
	DefaultMaxTotalSize   = 1 << 30
	DefaultMaxRatio       = 200
	DefaultRatioMinSize   = 1 << 20
)

// Limits bound what an archive may hold. A zero field takes its default.
type Limits struct {
	// MaxArchiveSize is the largest archive accepted, in bytes (64 MiB).
	MaxArchiveSize int64 `json:"max_archive_size"`
	// MaxEntries is the most entries (files and directories) (10,000).
	MaxEntries int `json:"max_entries"`
	// MaxTotalSize bounds the sum of uncompressed sizes, counted on bytes
	// actually decompressed (1 GiB).
	MaxTotalSize int64 `json:"max_total_size"`
	// MaxRatio bounds one entry's uncompressed/compressed ratio, counted on
	// bytes actually decompressed (200, meaning 200:1).
	MaxRatio int64 `json:"max_ratio"`
	// RatioMinSize exempts small entries from MaxRatio: the ratio is only
	// enforced once an entry has produced more than this many bytes
	// (1 MiB), since a few kilobytes of zeros legitimately compress far
	// beyond 200:1.
	RatioMinSize int64 `json:"ratio_min_size"`
}

// DefaultLimits returns the limits with every default filled in.
func DefaultLimits() Limits { return Limits{}.withDefaults() }

func (l Limits) withDefaults() Limits {
	if l.MaxArchiveSize == 0 {
		l.MaxArchiveSize = DefaultMaxArchiveSize
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxTotalSize == 0 {
		l.MaxTotalSize = DefaultMaxTotalSize
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	if l.RatioMinSize == 0 {
		l.RatioMinSize = DefaultRatioMinSize
	}
	return l
}

// Validate reports negative limits.
func (l Limits) Validate() error {
	if l.MaxArchiveSize < 0 || l.MaxEntries < 0 || l.MaxTotalSize < 0 || l.MaxRatio < 0 || l.RatioMinSize < 0 {
		return fmt.Errorf("manifest: limits must not be negative: %+v", l)
	}
	return nil
}

// File is one regular file of a package.
type File struct {
	// Path is slash-separated and relative to the package root.
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Mode holds the permission bits (0o755 …); archives made on Windows
	// carry none, and their files are given 0o644.
	Mode fs.FileMode `json:"mode"`
}

// Executable tells whether any execute bit is set.
func (f File) Executable() bool { return f.Mode&0o111 != 0 }

// Package is a checked package: its manifest, its files and, for an
// archive, its size and sha256.
type Package struct {
	Manifest *Manifest `json:"manifest"`
	Files    []File    `json:"files"`
	// SHA256 is the hex digest of the archive ("" for a directory).
	SHA256 string `json:"sha256,omitempty"`
	// Size is the archive's size in bytes (for a directory, the sum of the
	// file sizes).
	Size int64 `json:"size"`
}
