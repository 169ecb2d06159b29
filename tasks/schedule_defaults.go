package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/scheduler/spec"
	"github.com/packflow/packflow/store"
)

// DefaultScheduleName is the name of the schedule a package's manifest
// declares as name: the package's name first, so that two packages of an
// account may both declare "nightly".
func DefaultScheduleName(pkgName, name string) string { return pkgName + " / " + name }

// CreateDefaultSchedules creates, disabled, the schedules that the
// <Schedules> of version's manifest declares, for the package's owner:
// each deploys the package's active version, onto no server yet, so the
// owner picks servers and resumes it. A schedule of the same name already
// there is left as it is (the owner may have changed it), so activating
// again creates nothing twice. A declared schedule the scheduler refuses
// (spec.Parse; possible for versions published before the manifest used
// the scheduler's own checker) is skipped, never stored to fail at each
// fire. It returns the schedules created.
func CreateDefaultSchedules(ctx context.Context, st *store.Store, packageID, version, user string) ([]store.Schedule, error) {
	pkg, err := st.Package(ctx, packageID)
	if err != nil {
		return nil, fmt.Errorf("tasks: default schedules of %s: %w", packageID, err)
	}
	v, err := st.Version(ctx, packageID, version)
	if err != nil {
		return nil, fmt.Errorf("tasks: default schedules of %s@%s: %w", packageID, version, err)
	}
	var m manifest.Manifest
	if len(v.Manifest) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(v.Manifest, &m); err != nil {
		return nil, fmt.Errorf("tasks: manifest of %s@%s: %w", packageID, version, err)
	}
	var out []store.Schedule
	for _, ds := range m.Metadata.Schedules {
		sc := store.Schedule{AccountID: pkg.AccountID, User: user, Name: DefaultScheduleName(pkg.Name, ds.Name),
			Cron: ds.Cron, CatchUp: store.CatchUpOnce, Overlap: store.OverlapSkip, Origin: packageID + "@" + version,
			Anchor: time.Now().UTC().Truncate(time.Second),
			Action: store.ScheduleAction{Kind: store.ActionDeploy, Package: packageID, Version: store.ActiveVersion}}
		if ds.Every != "" {
			if sc.Every, err = time.ParseDuration(ds.Every); err != nil {
				continue // refused at publish; not one to create
			}
		}
		if _, err := spec.Parse(spec.Spec{Cron: sc.Cron, Every: sc.Every, Timezone: sc.Timezone, Anchor: sc.Anchor}); err != nil {
			continue // the scheduler could never fire it
		}
		created, err := st.PutSchedule(ctx, sc, time.Time{})
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrInvalid) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("tasks: default schedule %q of %s: %w", ds.Name, packageID, err)
		}
		out = append(out, created)
	}
	return out, nil
}
