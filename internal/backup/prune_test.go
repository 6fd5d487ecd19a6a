package backup

import (
	"slices"
	"testing"
	"time"
)

func TestPlanPrune(t *testing.T) {
	day := func(d int, kind Kind, base string) Entry {
		at := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC).AddDate(0, 0, d)
		return Entry{ID: at.Format("20060102T150405Z") + "-" + string(kind) + "-000000", Kind: kind, CreatedAt: at, Base: base, Instance: "a", Complete: true}
	}
	// 60 days: a full backup every Sunday (2026-01-04 is one), incrementals
	// on the other days, each on the day before.
	var entries []Entry
	prev := ""
	for d := range 60 {
		kind := Incremental
		base := prev
		if time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d).Weekday() == time.Sunday || d == 0 {
			kind, base = Full, ""
		}
		e := day(d, kind, base)
		entries = append(entries, e)
		prev = e.ID
	}
	// An interrupted upload from long ago, and one still in progress.
	entries = append(entries, Entry{ID: "20260102T030000Z-incremental-aaaaaa"}, Entry{ID: "20260301T010000Z-incremental-bbbbbb"})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	plan := PlanPrune(entries, Retention{Daily: 7, Weekly: 4, Monthly: 12}, now)

	kept := map[string]Entry{}
	for _, e := range plan.Keep {
		kept[e.ID] = e
	}
	// Nothing kept is orphaned.
	for _, e := range plan.Keep {
		if e.Complete && e.Base != "" {
			if _, ok := kept[e.Base]; !ok {
				t.Errorf("%s is kept but its base %s is not", e.ID, e.Base)
			}
		}
	}
	// The newest backup and the last 7 days' are kept.
	for d := 53; d < 60; d++ {
		if _, ok := kept[entries[d].ID]; !ok {
			t.Errorf("day %d (%s) is not kept", d, entries[d].ID)
		}
	}
	// One backup per month: January's newest (Jan 31) and its chain back to Sunday Jan 25.
	if _, ok := kept[day(30, Incremental, "").ID]; !ok {
		t.Errorf("January's monthly restore point is not kept")
	}
	// Something old is removed, and the stale incomplete upload with it; the recent one stays.
	removed := map[string]bool{}
	for _, e := range plan.Remove {
		removed[e.ID] = true
	}
	if !removed[entries[3].ID] || !removed["20260102T030000Z-incremental-aaaaaa"] || removed["20260301T010000Z-incremental-bbbbbb"] {
		t.Errorf("removed %v", slices.Sorted(func(yield func(string) bool) {
			for k := range removed {
				if !yield(k) {
					return
				}
			}
		}))
	}
	if len(plan.Keep)+len(plan.Remove) != len(entries) {
		t.Errorf("kept %d + removed %d != %d entries", len(plan.Keep), len(plan.Remove), len(entries))
	}
	// Keeping nothing but the newest still keeps its whole chain.
	plan = PlanPrune(entries[:60], Retention{}, now)
	if len(plan.Keep) != 1+int(entries[59].CreatedAt.Weekday()) {
		t.Errorf("with no retention, kept %d backups; want the newest and its chain back to Sunday", len(plan.Keep))
	}
}
