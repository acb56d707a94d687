package monitor

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"moat.dev/moat/internal/rules"
	"moat.dev/moat/internal/store"
)

// rulesKey is the KV key of the user rules file.
const rulesKey = "rules"

// loadRules builds the engine from the stored user rules file, if any.
func (m *Monitor) loadRules(ctx context.Context) (*rules.Engine, error) {
	kve, err := m.opts.KV.Get(ctx, rulesKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rules.New(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	return compileRules(kve.Value())
}

func compileRules(doc []byte) (*rules.Engine, error) {
	if len(doc) == 0 {
		return rules.New(nil)
	}
	f, err := rules.Parse(doc)
	if err != nil {
		return nil, err
	}
	return rules.New(f)
}

// watchRules follows changes of the rules file made on any node.
func (m *Monitor) watchRules() {
	err := store.WatchUpdates(m.ctx, m.opts.KV, rulesKey, func(kve jetstream.KeyValueEntry) {
		var doc []byte
		if kve.Operation() == jetstream.KeyValuePut {
			doc = kve.Value()
		}
		eng, err := compileRules(doc)
		if err != nil {
			m.log.Error("stored detection rules are invalid; keeping the previous ones", "err", err)
			return
		}
		m.engine.Store(eng)
		m.log.Info("detection rules loaded", "revision", kve.Revision())
	})
	if err != nil {
		m.log.Error("rules made on other nodes will not be followed", "err", err)
	}
}

// Rules returns the stored user rules file (empty when there is none).
func (m *Monitor) Rules(ctx context.Context) ([]byte, error) {
	kve, err := m.opts.KV.Get(ctx, rulesKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	return kve.Value(), nil
}

// PutRules validates a user rules file (YAML and every CEL condition) and,
// if it is valid, stores it; every node then uses it. An empty document
// removes the user rules.
func (m *Monitor) PutRules(ctx context.Context, doc []byte) error {
	eng, err := compileRules(doc)
	if err != nil {
		return err
	}
	if len(doc) == 0 {
		if err := m.opts.KV.Delete(ctx, rulesKey); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("remove rules: %w", err)
		}
	} else if _, err := m.opts.KV.Put(ctx, rulesKey, doc); err != nil {
		return fmt.Errorf("store rules: %w", err)
	}
	m.engine.Store(eng)
	return nil
}
