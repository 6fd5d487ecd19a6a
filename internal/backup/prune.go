package backup

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/store"
)

// Retention says which restore points to keep: the newest backup of each
// of the last Daily days, Weekly ISO weeks and Monthly months (UTC) that
// have backups. The newest backup is always kept, and so is every backup
// a kept one needs (its chain): an incremental is never orphaned.
type Retention struct {
	Daily, Weekly, Monthly int
}

// DefaultRetention keeps 7 daily, 4 weekly and 12 monthly restore points.
var DefaultRetention = Retention{Daily: 7, Weekly: 4, Monthly: 12}

// Validate rejects negative counts (zero everywhere still keeps the
// newest backup and its chain).
func (r Retention) Validate() error {
	if r.Daily < 0 || r.Weekly < 0 || r.Monthly < 0 {
		return fmt.Errorf("retention counts must not be negative")
	}
	return nil
}

// PrunePlan is what a prune keeps and removes.
type PrunePlan struct {
	Keep   []Entry `json:"keep"`
	Remove []Entry `json:"remove"`
}

// incompleteGrace is how long a backup without a manifest is left alone:
// it may still be uploading.
const incompleteGrace = 24 * time.Hour

// PlanPrune decides, per database instance, which backups to keep.
func PlanPrune(entries []Entry, r Retention, now time.Time) PrunePlan {
	byID := map[string]Entry{}
	byInstance := map[string][]Entry{}
	var plan PrunePlan
	for _, e := range entries {
		if !e.Complete {
			created, err := time.Parse("20060102T150405Z", e.ID[:min(16, len(e.ID))])
			if e.Error == "" && err == nil && now.Sub(created) > incompleteGrace {
				plan.Remove = append(plan.Remove, e)
			} else {
				plan.Keep = append(plan.Keep, e)
			}
			continue
		}
		byID[e.ID] = e
		byInstance[e.Instance] = append(byInstance[e.Instance], e)
	}
	keep := map[string]bool{}
	var mark func(id string)
	mark = func(id string) {
		e, ok := byID[id]
		if !ok || keep[id] {
			return
		}
		keep[id] = true
		if e.Base != "" {
			mark(e.Base)
		}
	}
	for _, list := range byInstance {
		sort.Slice(list, func(i, j int) bool { return list[i].CreatedAt.After(list[j].CreatedAt) })
		mark(list[0].ID)
		buckets := []struct {
			n   int
			key func(time.Time) string
		}{
			{r.Daily, func(t time.Time) string { return t.UTC().Format("2006-01-02") }},
			{r.Weekly, func(t time.Time) string { y, w := t.UTC().ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
			{r.Monthly, func(t time.Time) string { return t.UTC().Format("2006-01") }},
		}
		for _, b := range buckets {
			seen := map[string]bool{}
			for _, e := range list {
				k := b.key(e.CreatedAt)
				if seen[k] {
					continue
				}
				if len(seen) >= b.n {
					break
				}
				seen[k] = true
				mark(e.ID)
			}
		}
	}
	for _, e := range entries {
		if !e.Complete {
			continue
		}
		if keep[e.ID] {
			plan.Keep = append(plan.Keep, e)
		} else {
			plan.Remove = append(plan.Remove, e)
		}
	}
	sort.Slice(plan.Keep, func(i, j int) bool { return plan.Keep[i].ID < plan.Keep[j].ID })
	sort.Slice(plan.Remove, func(i, j int) bool { return plan.Remove[i].ID < plan.Remove[j].ID })
	return plan
}

// Remove deletes a backup from a destination: its manifest first (so it
// is no longer a restore point even if the rest fails), then its chunks.
func Remove(ctx context.Context, d *Destination, id string) error {
	if !validID(id) {
		return fmt.Errorf("%q is not a backup id", id)
	}
	if err := d.Delete(ctx, objectName(id, manifestName)); err != nil {
		return err
	}
	names, err := d.List(ctx, root+id+"/")
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := d.Delete(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// PruneOptions is what Prune needs.
type PruneOptions struct {
	From      *Destination
	KeyOf     KeySource
	Retention Retention
	DryRun    bool
	DB        *store.DB // the live database: the prune is an audit event there
	Actor     string
	Now       func() time.Time
}

// Prune removes the backups the retention policy no longer keeps and
// records what it removed (backup.prune).
func Prune(ctx context.Context, o PruneOptions) (PrunePlan, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := o.Retention.Validate(); err != nil {
		return PrunePlan{}, err
	}
	entries, err := List(ctx, o.From, o.KeyOf)
	if err != nil {
		return PrunePlan{}, err
	}
	plan := PlanPrune(entries, o.Retention, o.Now())
	if o.DryRun || len(plan.Remove) == 0 {
		return plan, nil
	}
	var removed []string
	var rerr error
	for _, e := range plan.Remove {
		if rerr = Remove(ctx, o.From, e.ID); rerr != nil {
			rerr = fmt.Errorf("remove %s: %w", e.ID, rerr)
			break
		}
		removed = append(removed, e.ID)
	}
	if o.DB != nil {
		actor := o.Actor
		if actor == "" {
			actor = "system"
		}
		ev := audit.Event{Actor: actor, Action: "backup.prune", ObjectType: "backup", ObjectID: o.From.String(), Outcome: audit.OK,
			Details: map[string]any{"removed": removed, "kept": len(plan.Keep), "retention": o.Retention}}
		if rerr != nil {
			ev.Outcome, ev.Reason = audit.Failed, oneLine(rerr.Error())
		}
		if err := audit.RecordAlone(context.WithoutCancel(ctx), o.DB, o.Now(), ev); err != nil && rerr == nil {
			rerr = err
		}
	}
	return plan, rerr
}
