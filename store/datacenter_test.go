package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

// TestDatacenterNameWithBracesRefused: a datacenter names the queue
// exec:<dc>, whose keys asynq hash-tags as {exec:<dc>}; a brace would
// break the tag, so the name is refused with the rule.
func TestDatacenterNameWithBracesRefused(t *testing.T) {
	t.Parallel()
	_, rdb := testenv.Miniredis(t)
	s := store.New(rdb, store.Options{})
	for _, dc := range []string{"eu{1}", "eu}", "{eu"} {
		_, err := s.CreateServer(context.Background(), store.Server{AccountID: "root", Name: "web-" + dc, Address: "10.0.0.1",
			OS: "linux", Transport: store.TransportLocal, Datacenter: dc})
		if err == nil || !strings.Contains(err.Error(), "'{' or '}'") {
			t.Errorf("datacenter %q: %v, want the brace rule", dc, err)
		}
	}
	if _, err := s.CreateServer(context.Background(), store.Server{AccountID: "root", Name: "web", Address: "10.0.0.1",
		OS: "linux", Transport: store.TransportLocal, Datacenter: "eu-west"}); err != nil {
		t.Errorf("plain datacenter: %v", err)
	}
}
