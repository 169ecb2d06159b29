package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// MarkerName is the completion marker at the root of every installed tree.
// Only a tree whose marker is valid is trusted; code that copies a tree
// elsewhere (an upload to a server) should leave the marker out.
const MarkerName = ".packflow-installed"

// maxMarkerSize bounds what readMarker reads.
const maxMarkerSize = 4 << 10

// marker is the content of MarkerName.
type marker struct {
	UUID        string    `json:"uuid"`
	Version     string    `json:"version"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	InstalledAt time.Time `json:"installed_at"`
}

func (m marker) entry(path string) Entry {
	return Entry{UUID: m.UUID, Version: m.Version, SHA256: m.SHA256, Size: m.Size, InstalledAt: m.InstalledAt, Path: path}
}

// writeMarker creates the marker in dir; it fails when the file exists
// (a package that ships a file of that name).
func writeMarker(dir string, m marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, MarkerName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644) //nolint:gosec // readable like the tree it marks
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readMarker reads the marker of the tree at dir and checks that it names
// uuid and version and a well-formed digest.
func readMarker(dir, uuid, version string) (marker, error) {
	f, err := os.Open(filepath.Join(dir, MarkerName))
	if err != nil {
		return marker{}, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxMarkerSize+1))
	if err != nil {
		return marker{}, err
	}
	if len(b) > maxMarkerSize {
		return marker{}, errors.New("marker too large")
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil {
		return marker{}, fmt.Errorf("marker: %w", err)
	}
	switch {
	case m.UUID != uuid || m.Version != version:
		return marker{}, fmt.Errorf("marker names %s@%s", m.UUID, m.Version)
	case !validSHA256(m.SHA256):
		return marker{}, fmt.Errorf("marker sha256 %q is malformed", m.SHA256)
	case m.Size < 0:
		return marker{}, fmt.Errorf("marker size %d is negative", m.Size)
	}
	return m, nil
}
