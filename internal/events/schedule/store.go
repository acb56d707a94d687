package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Key prefixes in the bucket: definitions and their cursors.
const (
	defPrefix    = "def."
	cursorPrefix = "cur."
	groupPrefix  = "grp."
)

// key names a schedule in the bucket. KV keys cannot hold empty tokens,
// so the dots schedule names may contain are escaped ('=' is never in a
// name).
func key(prefix, group, name string) string {
	esc := strings.NewReplacer(".", "=2e")
	return prefix + esc.Replace(group) + "." + esc.Replace(name)
}

func unkey(prefix, k string) (group, name string, ok bool) {
	g, n, ok := strings.Cut(strings.TrimPrefix(k, prefix), ".")
	un := strings.NewReplacer("=2e", ".")
	return un.Replace(g), un.Replace(n), ok
}

// Cursor is a schedule's progress, shared by every node: the last tick
// handled and what became of the ticks so far.
type Cursor struct {
	Last      time.Time `json:"last"`   // scheduled time of the last tick handled
	Fired     int64     `json:"fired"`  // ticks handed to the function's queue
	Missed    int64     `json:"missed"` // ticks skipped by the missed-tick policy
	Failed    int64     `json:"failed"` // ticks never handed over (dead-lettered)
	LastError string    `json:"lastError,omitempty"`
	LastFired time.Time `json:"lastFired,omitzero"` // when the last tick was handed over
}

// Store keeps schedule definitions and cursors in a KV bucket.
type Store struct {
	kv jetstream.KeyValue
}

// NewStore returns a Store over kv.
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// Group is a schedule group. The default group always exists and is not
// stored.
type Group struct {
	Name                 string    `json:"name"`
	CreationDate         time.Time `json:"created"`
	LastModificationDate time.Time `json:"modified"`
	ClientToken          string    `json:"clientToken,omitempty"`
}

func groupKey(name string) string {
	return groupPrefix + strings.NewReplacer(".", "=2e").Replace(name)
}

func (st *Store) groupExists(ctx context.Context, group string) error {
	if group == DefaultGroup {
		return nil
	}
	if _, err := st.GetGroup(ctx, group); err != nil {
		return err
	}
	return nil
}

// CreateGroup stores a new schedule group; ErrConflict if it exists.
func (st *Store) CreateGroup(ctx context.Context, g *Group) error {
	if !ValidName(g.Name) {
		return newError(ErrValidation, "Value at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+ and have length between 1 and 64")
	}
	if g.Name == DefaultGroup {
		return newError(ErrConflict, "Schedule group %s already exists.", g.Name)
	}
	b, _ := json.Marshal(g)
	if _, err := st.kv.Create(ctx, groupKey(g.Name), b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return newError(ErrConflict, "Schedule group %s already exists.", g.Name)
		}
		return fmt.Errorf("create schedule group: %w", err)
	}
	return nil
}

// GetGroup returns a schedule group (the default one too).
func (st *Store) GetGroup(ctx context.Context, name string) (*Group, error) {
	if name == DefaultGroup {
		return &Group{Name: DefaultGroup}, nil
	}
	if !ValidName(name) {
		return nil, newError(ErrNotFound, "Schedule group %s does not exist.", clip(name))
	}
	e, err := st.kv.Get(ctx, groupKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, newError(ErrNotFound, "Schedule group %s does not exist.", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get schedule group: %w", err)
	}
	g := new(Group)
	if err := json.Unmarshal(e.Value(), g); err != nil {
		return nil, fmt.Errorf("get schedule group %s: undecodable record: %w", name, err)
	}
	return g, nil
}

// ListGroups returns every group whose name starts with prefix, the
// default one included, sorted by name.
func (st *Store) ListGroups(ctx context.Context, prefix string) ([]*Group, error) {
	out := []*Group{}
	if strings.HasPrefix(DefaultGroup, prefix) {
		out = append(out, &Group{Name: DefaultGroup})
	}
	lister, err := st.kv.ListKeysFiltered(ctx, groupPrefix+">")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return out, nil
		}
		return nil, fmt.Errorf("list schedule groups: %w", err)
	}
	for k := range lister.Keys() {
		name := strings.NewReplacer("=2e", ".").Replace(strings.TrimPrefix(k, groupPrefix))
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		g, err := st.GetGroup(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteGroup removes a group and every schedule in it. The default group
// cannot be deleted.
func (st *Store) DeleteGroup(ctx context.Context, name string) error {
	if name == DefaultGroup {
		return newError(ErrValidation, "The default schedule group cannot be deleted.")
	}
	if _, err := st.GetGroup(ctx, name); err != nil {
		return err
	}
	// The group goes first, so no schedule can be created in it meanwhile.
	if err := st.kv.Delete(ctx, groupKey(name)); err != nil {
		return fmt.Errorf("delete schedule group: %w", err)
	}
	scheds, err := st.list(ctx, name, "", "")
	if err != nil {
		return err
	}
	for _, s := range scheds {
		if err := st.deleteKeys(ctx, s.GroupName, s.Name, 0); err != nil {
			return err
		}
	}
	return nil
}

// Create stores a new, normalized schedule. It fails with ErrConflict if
// the name is taken in its group.
func (st *Store) Create(ctx context.Context, s *Schedule) error {
	if err := st.groupExists(ctx, s.GroupName); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if _, err := st.kv.Create(ctx, key(defPrefix, s.GroupName, s.Name), b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return newError(ErrConflict, "Schedule %s already exists.", s.Name)
		}
		return fmt.Errorf("create schedule: %w", err)
	}
	return nil
}

// Get returns a schedule and its revision.
func (st *Store) Get(ctx context.Context, group, name string) (*Schedule, uint64, error) {
	if group == "" {
		group = DefaultGroup
	}
	if err := st.groupExists(ctx, group); err != nil {
		return nil, 0, err
	}
	return st.get(ctx, group, name)
}

func (st *Store) get(ctx context.Context, group, name string) (*Schedule, uint64, error) {
	if !ValidName(name) {
		return nil, 0, newError(ErrNotFound, "Schedule %s does not exist.", clip(name))
	}
	e, err := st.kv.Get(ctx, key(defPrefix, group, name))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, 0, newError(ErrNotFound, "Schedule %s does not exist.", name)
		}
		return nil, 0, fmt.Errorf("get schedule: %w", err)
	}
	s := new(Schedule)
	if err := json.Unmarshal(e.Value(), s); err != nil {
		return nil, 0, fmt.Errorf("get schedule %s: undecodable record: %w", name, err)
	}
	return s, e.Revision(), nil
}

// Update replaces an existing schedule, keeping its creation date. The
// write is conditional on the revision read, so two concurrent updates
// cannot both win silently.
func (st *Store) Update(ctx context.Context, s *Schedule) error {
	old, rev, err := st.Get(ctx, s.GroupName, s.Name)
	if err != nil {
		return err
	}
	s.CreationDate = old.CreationDate
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if _, err := st.kv.Update(ctx, key(defPrefix, s.GroupName, s.Name), b, rev); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return newError(ErrConflict, "Schedule %s was changed concurrently; retry.", s.Name)
		}
		return fmt.Errorf("update schedule: %w", err)
	}
	return nil
}

// Delete removes a schedule and its cursor.
func (st *Store) Delete(ctx context.Context, group, name string) error {
	if group == "" {
		group = DefaultGroup
	}
	if _, _, err := st.Get(ctx, group, name); err != nil {
		return err
	}
	return st.deleteKeys(ctx, group, name, 0)
}

// deleteKeys removes a definition (only at revision rev, if rev > 0) and
// its cursor.
func (st *Store) deleteKeys(ctx context.Context, group, name string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	if err := st.kv.Delete(ctx, key(defPrefix, group, name), opts...); err != nil {
		return fmt.Errorf("delete schedule: %w", err)
	}
	if err := st.kv.Purge(ctx, key(cursorPrefix, group, name)); err != nil {
		return fmt.Errorf("delete schedule cursor: %w", err)
	}
	return nil
}

// List returns the schedules of a group (every group if group is "")
// whose names start with prefix and, if state is set, in that state,
// sorted by group and name.
func (st *Store) List(ctx context.Context, group, prefix, state string) ([]*Schedule, error) {
	if group != "" {
		if err := st.groupExists(ctx, group); err != nil {
			return nil, err
		}
	}
	return st.list(ctx, group, prefix, state)
}

func (st *Store) list(ctx context.Context, group, prefix, state string) ([]*Schedule, error) {
	filter := defPrefix + ">"
	if group != "" {
		filter = key(defPrefix, group, "") + ">"
	}
	lister, err := st.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var out []*Schedule
	for k := range lister.Keys() {
		g, n, ok := unkey(defPrefix, k)
		if !ok || !strings.HasPrefix(n, prefix) {
			continue
		}
		s, _, err := st.get(ctx, g, n)
		if errors.Is(err, ErrNotFound) {
			continue // deleted while listing
		}
		if err != nil {
			return nil, err
		}
		if state == "" || s.State == state {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GroupName != out[j].GroupName {
			return out[i].GroupName < out[j].GroupName
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Cursor returns a schedule's cursor and its revision (0: none yet).
func (st *Store) Cursor(ctx context.Context, group, name string) (Cursor, uint64, error) {
	var c Cursor
	e, err := st.kv.Get(ctx, key(cursorPrefix, group, name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return c, 0, nil
	}
	if err != nil {
		return c, 0, fmt.Errorf("read schedule cursor: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return c, 0, fmt.Errorf("read schedule cursor: %w", err)
	}
	return c, e.Revision(), nil
}

// errCursorMoved reports that another node moved a cursor first.
var errCursorMoved = errors.New("cursor moved")

// putCursor writes a cursor if it is still at rev (0: absent).
func (st *Store) putCursor(ctx context.Context, group, name string, c Cursor, rev uint64) error {
	b, _ := json.Marshal(c)
	k := key(cursorPrefix, group, name)
	var err error
	if rev == 0 {
		_, err = st.kv.Create(ctx, k, b)
	} else {
		_, err = st.kv.Update(ctx, k, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return errCursorMoved
	}
	return err
}

// watch follows every definition: the current ones, then each change.
func (st *Store) watch(ctx context.Context) (jetstream.KeyWatcher, error) {
	return st.kv.Watch(ctx, defPrefix+">")
}
