package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/localapi"
)

// A write through the API is applied only if it is kept: with a data dir,
// the files of the new state are written first, and only then is the
// catalog changed and the change gossiped. A file that cannot be written
// undoes the files written before it and fails the request; nothing else
// changed. (Consul's agent changes its state first and then reports the
// failed save with a 500, leaving a registration the caller was told
// failed; Shoal does not.)

// fileTx is a set of data-dir file changes made in order and undone in
// reverse if one fails.
type fileTx struct {
	a    *Agent
	undo []fileUndo
}

type fileUndo struct {
	path    string
	old     []byte
	existed bool
}

// newTx starts a set of file changes; nil (no changes) without a data dir.
func (a *Agent) newTx() *fileTx {
	if a.cfg.DataDir == "" {
		return nil
	}
	return &fileTx{a: a}
}

// write replaces path with data, or removes it if data is nil.
func (tx *fileTx) write(path string, data []byte) error {
	if tx == nil {
		return nil
	}
	old, err := os.ReadFile(path)
	existed := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return tx.fail(path, fmt.Errorf("persist: read %s: %w", path, err))
	}
	if existed && data != nil && string(old) == string(data) {
		return nil
	}
	if data == nil {
		if !existed {
			return nil
		}
		err = removeFile(path)
	} else {
		err = writeFileAtomic(path, data)
	}
	if err != nil {
		return tx.fail(path, err)
	}
	tx.undo = append(tx.undo, fileUndo{path: path, old: old, existed: existed})
	return nil
}

// fail undoes what the set changed, counts and logs the disk error, and
// returns it, short: the file relative to the data dir and the system's
// reason (the log has the rest).
func (tx *fileTx) fail(path string, err error) error {
	short := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		rel, rerr := filepath.Rel(tx.a.cfg.DataDir, path)
		if rerr != nil {
			rel = path
		}
		short = fmt.Errorf("write %s: %w", rel, pe.Err)
	}
	for i := len(tx.undo) - 1; i >= 0; i-- {
		u := tx.undo[i]
		var uerr error
		if u.existed {
			uerr = writeFileAtomic(u.path, u.old)
		} else {
			uerr = removeFile(u.path)
		}
		if uerr != nil {
			// The file holds the refused state; the next write of the
			// same service or check puts it right, a restart before
			// that restores it.
			err = errors.Join(err, fmt.Errorf("undo: %w", uerr))
		}
	}
	tx.undo = nil
	tx.a.diskError(err)
	return fmt.Errorf("%w: %w", localapi.ErrNotKept, short)
}

// diskError counts a failed data-dir write and logs it, at most once a
// minute with the count of those not logged.
func (a *Agent) diskError(err error) {
	a.diskErrors.Add(1)
	a.diskLogMu.Lock()
	defer a.diskLogMu.Unlock()
	now := time.Now()
	if !a.diskLoggedAt.IsZero() && now.Sub(a.diskLoggedAt) < time.Minute {
		a.diskUnlogged++
		return
	}
	a.log.Error("data dir write failed; the write was refused and nothing changed", "err", err, "unlogged_since_last", a.diskUnlogged)
	a.diskLoggedAt, a.diskUnlogged = now, 0
}

// serviceData is the file of an API service; nil for a config service
// (the config file defines it) or a service that is gone.
func serviceData(s *catalog.Service, config bool) ([]byte, error) {
	if s == nil || config {
		return nil, nil
	}
	data, err := json.Marshal(persistedService{Version: 1, Service: *s})
	if err != nil {
		return nil, fmt.Errorf("persist service %q: %w", s.ID, err)
	}
	return data, nil
}

// checkData is the file of an API check; nil for a config check or one
// that is gone.
func checkData(lc *localCheck) ([]byte, error) {
	if lc == nil || lc.config {
		return nil, nil
	}
	data, err := json.Marshal(persistedCheck{Version: 1, Check: lc.reg})
	if err != nil {
		return nil, fmt.Errorf("persist check %q: %w", lc.def.ID, err)
	}
	return data, nil
}

// maintenance reads the maintenance modes the catalog holds.
func (a *Agent) maintenance() persistedMaintenance {
	p := persistedMaintenance{Version: 1, Services: map[string]string{}}
	a.Read(func(c *catalog.Catalog) {
		if ck, ok := c.LocalCheck(catalog.NodeMaintenanceID); ok {
			p.Node = &ck.Notes
		}
		for _, s := range c.LocalServices() {
			if ck, ok := c.LocalCheck(catalog.ServiceMaintenanceID(s.ID)); ok {
				p.Services[s.ID] = ck.Notes
			}
		}
	})
	return p
}

// maintenanceData is the maintenance file of p; nil when nothing is in
// maintenance.
func maintenanceData(p persistedMaintenance) ([]byte, error) {
	if p.Node == nil && len(p.Services) == 0 {
		return nil, nil
	}
	data, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("persist maintenance: %w", err)
	}
	return data, nil
}

func (a *Agent) maintenancePath() string { return filepath.Join(a.cfg.DataDir, maintenanceFile) }
