package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

func TestCheckNetworkReportsEveryProblem(t *testing.T) {
	t.Parallel()
	got := store.CheckNetwork(store.Network{Name: "10.0.0.0/24", CIDR: "10.0.1.7/24"})
	var paths []string
	for _, p := range got {
		paths = append(paths, p.Path+"/"+p.Rule)
	}
	want := []string{"name/invalid value", "datacenter/missing", "cidr/invalid value"}
	if !slices.Equal(paths, want) {
		t.Fatalf("problems %v, want %v (%+v)", paths, want, got)
	}
	if p := store.CheckNetwork(store.Network{Name: "backend", Datacenter: "eu-west", CIDR: "10.0.1.0/24"}); len(p) != 0 {
		t.Fatalf("a good network: %+v", p)
	}
	if p := store.CheckNetwork(store.Network{Name: "x", Datacenter: "a b", CIDR: "nope"}); len(p) != 2 {
		t.Fatalf("bad datacenter and cidr: %+v", p)
	}
}

func TestNetworkNamesUniquePerAccountDatacenter(t *testing.T) {
	t.Parallel()
	_, rdb := testenv.Miniredis(t)
	s := store.New(rdb, store.Options{})
	ctx := context.Background()
	a, err := s.CreateNetwork(ctx, store.Network{AccountID: "acme", Name: "Backend", Datacenter: "eu-west", CIDR: "10.0.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNetwork(ctx, store.Network{AccountID: "acme", Name: "backend", Datacenter: "eu-west", CIDR: "10.0.2.0/24"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same name, same datacenter: %v", err)
	}
	// The same name in another datacenter, or in another account, is another network.
	b, err := s.CreateNetwork(ctx, store.Network{AccountID: "acme", Name: "backend", Datacenter: "us-east", CIDR: "10.1.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNetwork(ctx, store.Network{AccountID: "other", Name: "backend", Datacenter: "eu-west", CIDR: "10.9.1.0/24"}); err != nil {
		t.Fatal(err)
	}
	// A rename frees the old name.
	if _, err := s.UpdateNetwork(ctx, a.ID, func(n *store.Network) error { n.Name = "front"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNetwork(ctx, store.Network{AccountID: "acme", Name: "backend", Datacenter: "eu-west", CIDR: "10.0.3.0/24"}); err != nil {
		t.Fatalf("the old name after a rename: %v", err)
	}
	if _, err := s.UpdateNetwork(ctx, b.ID, func(n *store.Network) error { n.Datacenter = "eu-west"; return nil }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("moving onto a taken name: %v", err)
	}
	if _, err := s.UpdateNetwork(ctx, b.ID, func(n *store.Network) error { n.CIDR = "bad"; return nil }); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("an invalid update: %v", err)
	}
	all, err := s.Networks(ctx)
	if err != nil || len(all) != 4 {
		t.Fatalf("Networks = %d, %v", len(all), err)
	}
	if err := s.DeleteNetwork(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Network(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted network: %v", err)
	}
	if _, err := s.CreateNetwork(ctx, store.Network{AccountID: "acme", Name: "backend", Datacenter: "us-east", CIDR: "10.1.1.0/24"}); err != nil {
		t.Fatalf("the name of a deleted network: %v", err)
	}
}
