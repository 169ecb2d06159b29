package tasks

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
)

// Network values.
//
// The original platform's Network parameter was a drop-down list of the
// account's networks, and the command received the chosen network's
// name. packflow keeps that: a Network value is the name of one of the
// networks the deploying account sees (its own and its sub-accounts', as
// for servers), in the datacenter of every target server that runs
// the step. It reaches the command as given, the name, never rewritten
// into a CIDR block. A CIDR block or an address is still accepted as it
// is, for accounts that record no networks.

// checkPlanValue checks a deployment value of a step for os: Network
// values against the account's networks and the targets' datacenters,
// the rest as checkValue does.
func (req PlanRequest) checkPlanValue(p manifest.Parameter, v, os string) error {
	if p.Type != manifest.TypeNetwork {
		return checkValue(p, v, req.Visible)
	}
	var targets []store.Server
	for _, sv := range req.Servers {
		if sv.OS == os {
			targets = append(targets, sv)
		}
	}
	return checkNetworkValue(p, v, req.Networks, targets)
}

// CheckDesignParameter checks a value a blueprint's designer sets, before
// any target is known: CheckParameter's rules, and a Network value must
// name one of networks (in any datacenter) or be a CIDR block.
func CheckDesignParameter(p manifest.Parameter, v string, visible []store.Server, networks []store.Network) error {
	if p.Type == manifest.TypeNetwork {
		return checkNetworkValue(p, v, networks, nil)
	}
	return checkValue(p, v, visible)
}

// checkNetworkValue checks a Network value: empty (Required decides), a
// CIDR block or address, or the exact name of one of networks present in
// the datacenter of every target.
func checkNetworkValue(p manifest.Parameter, v string, networks []store.Network, targets []store.Server) error {
	if v == "" || store.IsNetworkLiteral(v) {
		return p.CheckValue(v)
	}
	fail := func(format string, args ...any) error {
		return &manifest.ValueError{Variable: p.Variable, Rule: manifest.ValueInvalid, Message: fmt.Sprintf(format, args...)}
	}
	in := map[string]bool{} // datacenters holding the name
	for _, n := range networks {
		if n.Name == v {
			in[n.Datacenter] = true
		}
	}
	if len(in) == 0 {
		hint := "this account has no networks (POST /networks records one)"
		if names := networkNames(networks); len(names) > 0 {
			hint = "this account's networks are " + strings.Join(names, ", ")
		}
		for _, n := range networks {
			if strings.EqualFold(n.Name, v) {
				hint = fmt.Sprintf("did you mean %q? Names are given exactly", n.Name)
				break
			}
		}
		return fail("%q is neither the name of a network this account sees nor a CIDR block such as 10.0.0.0/24; %s", v, hint)
	}
	var missing []string
	for _, sv := range targets {
		if !in[sv.Datacenter] {
			missing = append(missing, fmt.Sprintf("%s (datacenter %s)", sv.Name, sv.Datacenter))
		}
	}
	if len(missing) > 0 {
		dcs := make([]string, 0, len(in))
		for dc := range in {
			dcs = append(dcs, dc)
		}
		slices.Sort(dcs)
		return fail("network %q is in datacenter %s only, not where server %s runs; record the network there or deploy onto servers of its datacenter",
			v, strings.Join(dcs, ", "), strings.Join(missing, ", "))
	}
	return nil
}

// networkNames returns the distinct names of networks, sorted.
func networkNames(networks []store.Network) []string {
	var names []string
	for _, n := range networks {
		if !slices.Contains(names, n.Name) {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	return names
}

// OfferNetworks fills the options of the Network fields of a form with
// the networks the account sees, one option per name (its value the
// name, its label the datacenters and blocks it covers), as the
// original's drop-down list did. A CIDR block typed instead is accepted
// too.
func OfferNetworks(fields []FormField, networks []store.Network) []FormField {
	var opts []manifest.Option
	for _, name := range networkNames(networks) {
		var where []string
		for _, n := range networks {
			if n.Name == name {
				where = append(where, n.Datacenter+" "+n.CIDR)
			}
		}
		slices.Sort(where)
		opts = append(opts, manifest.Option{Name: fmt.Sprintf("%s (%s)", name, strings.Join(where, "; ")), Value: name})
	}
	for i := range fields {
		if fields[i].Type == manifest.TypeNetwork {
			fields[i].Options = slices.Clone(opts)
		}
	}
	return fields
}

// visibleNetworks returns the networks account sees.
func visibleNetworks(ctx context.Context, st *store.Store, account string) ([]store.Network, error) {
	all, err := st.Networks(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.Network
	for _, n := range all {
		ok, err := canSee(ctx, st, account, n.AccountID)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, n)
		}
	}
	return out, nil
}
