package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/health"
)

// The data directory keeps what the agent must not lose across restarts:
// one file per service and one per check registered over the API (so a
// burst of registrations writes each once, and a crash can only ever lose
// the write under way), the maintenance modes, and the peers it has known.
// What the config file defines is not kept: the file is read again.
const (
	servicesDir     = "services"
	checksDir       = "checks"
	maintenanceFile = "maintenance.json"
	peersFile       = "peers.json"
)

// persistedCheck is the file format of one check: the registration as the
// API would take it again.
type persistedCheck struct {
	Version int
	Check   api.AgentCheckRegistration
}

// persistedMaintenance is the file format of the maintenance modes: the
// reason of each, by service ID; Node is nil when the node is not in
// maintenance.
type persistedMaintenance struct {
	Version  int
	Node     *string
	Services map[string]string
}

// persistedService is the file format of one service: versioned, so a
// later Shoal can read what an earlier one wrote.
type persistedService struct {
	Version int
	Service catalog.Service
}

// writeFileAtomic writes data to path so that a crash at any moment leaves
// either the old file or the new one, never a part: temp file, fsync,
// rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("persist %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("persist %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("persist %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("persist %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("persist %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("persist: open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("persist: sync %s: %w", dir, err)
	}
	return nil
}

// serviceFile names a service's file by a hash of its ID: IDs may hold
// characters a file name cannot.
func (a *Agent) serviceFile(id string) string { return a.hashedFile(servicesDir, id) }

func (a *Agent) hashedFile(dir, id string) string {
	h := sha256.Sum256([]byte(id))
	return filepath.Join(a.cfg.DataDir, dir, hex.EncodeToString(h[:16])+".json")
}

// removeFile removes a file that may not exist, durably.
func removeFile(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing changed, nothing to sync
	}
	if err != nil {
		return fmt.Errorf("persist: remove %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// restoreServices registers, in the catalog, every service found in the
// data directory. A file that cannot be read or decoded is reported, set
// aside (renamed *.corrupt-TIME) and skipped: it never stops the agent.
func (a *Agent) restoreServices() error {
	n, err := a.restoreDir(servicesDir, "service", func(path string) error {
		s, err := readService(path)
		if err == nil {
			a.mu.Lock()
			_, _, err = a.cat.Put(s, a.now())
			a.mu.Unlock()
		}
		return err
	})
	if n > 0 {
		a.log.Info("restored services from the data dir", "services", n)
	}
	return err
}

// restoreChecks starts again every check found in the data directory, in
// its initial state; a TTL check is critical until its first heartbeat,
// whatever it was before. Services are restored first: a check of a
// service that is gone is set aside.
func (a *Agent) restoreChecks() error {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	n, err := a.restoreDir(checksDir, "check", func(path string) error {
		r, err := readCheck(path)
		if err != nil {
			return err
		}
		def, err := health.FromCheckRegistration(r)
		if err != nil {
			return err
		}
		if def.TTL > 0 {
			def.Status = catalog.HealthCritical
		}
		lc := &localCheck{reg: r, def: def}
		if err := lc.initial().Validate(); err != nil {
			return err
		}
		if def.ServiceID != "" {
			var ok bool
			a.Read(func(c *catalog.Catalog) { _, ok = c.LocalService(def.ServiceID) })
			if !ok {
				// A deregistration a crash cut short (the service's file
				// goes first): never acknowledged, and not corrupt.
				a.log.Warn("dropped the saved check of a service that is not registered", "check", def.ID, "service", def.ServiceID)
				return errOrphan
			}
		}
		a.addChecks([]*localCheck{lc})
		return nil
	})
	if n > 0 {
		a.log.Info("restored checks from the data dir", "checks", n)
	}
	if err != nil {
		return err
	}
	return a.restoreMaintenance()
}

// restoreMaintenance puts the node and services back into the
// maintenance modes saved; call with regMu held.
func (a *Agent) restoreMaintenance() error {
	path := filepath.Join(a.cfg.DataDir, maintenanceFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var p persistedMaintenance
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(&p)
	}
	if err == nil && p.Version != 1 {
		err = fmt.Errorf("file format version %d; this agent reads 1", p.Version)
	}
	if err != nil {
		a.setAside(path, "maintenance", err)
		return nil
	}
	if p.Node != nil {
		if err := a.setMaintenance("", true, *p.Node); err != nil {
			a.log.Error("node maintenance not restored", "err", err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(p.Services)) {
		var ok bool
		a.Read(func(c *catalog.Catalog) { _, ok = c.LocalService(id) })
		if !ok {
			continue // deregistered since; the next write drops it
		}
		if err := a.setMaintenance(id, true, p.Services[id]); err != nil {
			a.log.Error("service maintenance not restored", "service", id, "err", err)
		}
	}
	return nil
}

// errOrphan is a restore function's way of saying a file is stale and is
// to be removed rather than set aside.
var errOrphan = errors.New("stale file")

// restoreDir calls restore for every file of a data-dir subdirectory and
// returns how many it restored. A file that cannot be read, decoded or
// restored is reported, set aside (renamed *.corrupt-TIME) and skipped: it
// never stops the agent.
func (a *Agent) restoreDir(sub, what string, restore func(path string) error) (int, error) {
	dir := filepath.Join(a.cfg.DataDir, sub)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("data-dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("data-dir: %w", err)
	}
	restored := 0
	for _, de := range entries {
		name := de.Name()
		if de.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			if strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") {
				_ = os.Remove(filepath.Join(dir, name)) // a write a crash interrupted
			}
			continue
		}
		path := filepath.Join(dir, name)
		if err := restore(path); errors.Is(err, errOrphan) {
			_ = removeFile(path)
			continue
		} else if err != nil {
			a.setAside(path, what, err)
			continue
		}
		restored++
	}
	return restored, nil
}

// setAside renames an unreadable file out of the way and says so.
func (a *Agent) setAside(path, what string, err error) {
	aside := fmt.Sprintf("%s.corrupt-%d", path, a.now().Unix())
	a.log.Error("set aside an unreadable "+what+" file", "file", path, "moved_to", aside, "err", err)
	if rerr := os.Rename(path, aside); rerr != nil {
		a.log.Error("could not set the file aside", "file", path, "err", rerr)
	}
}

func readCheck(path string) (api.AgentCheckRegistration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return api.AgentCheckRegistration{}, err
	}
	var p persistedCheck
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return api.AgentCheckRegistration{}, fmt.Errorf("decode: %w", err)
	}
	if p.Version != 1 {
		return api.AgentCheckRegistration{}, fmt.Errorf("file format version %d; this agent reads 1", p.Version)
	}
	return p.Check, nil
}

func readService(path string) (catalog.Service, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return catalog.Service{}, err
	}
	var p persistedService
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return catalog.Service{}, fmt.Errorf("decode: %w", err)
	}
	if p.Version != 1 {
		return catalog.Service{}, fmt.Errorf("file format version %d; this agent reads 1", p.Version)
	}
	return p.Service, nil
}

// savePeers records the gossip addresses of every node the agent knows,
// failed ones included, so that a restart can find the cluster again.
func (a *Agent) savePeers() error {
	if a.cfg.DataDir == "" {
		return nil
	}
	a.mu.RLock()
	nodes := a.cat.Nodes()
	a.mu.RUnlock()
	var peers []string
	self := a.GossipAddr()
	for _, n := range nodes {
		addr := fmt.Sprintf("%s:%d", n.Address, n.Port)
		if n.Name != a.cfg.NodeName && n.Address != "" && addr != self {
			peers = append(peers, addr)
		}
	}
	sort.Strings(peers)
	a.persistMu.Lock()
	defer a.persistMu.Unlock()
	if slices.Equal(peers, a.savedPeers) {
		return nil
	}
	data, err := json.Marshal(peers)
	if err != nil {
		return fmt.Errorf("persist peers: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(a.cfg.DataDir, peersFile), data); err != nil {
		return err
	}
	a.savedPeers = peers
	return nil
}

// loadPeers reads the saved peers; a missing or unreadable file is no
// peers (an unreadable one is reported and set aside).
func (a *Agent) loadPeers() []string {
	if a.cfg.DataDir == "" {
		return nil
	}
	path := filepath.Join(a.cfg.DataDir, peersFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var peers []string
	if err == nil {
		err = json.Unmarshal(data, &peers)
	}
	if err != nil {
		a.setAside(path, "peers", err)
		return nil
	}
	a.savedPeers = peers
	return peers
}

// peerSaveInterval is how often the known peers are written, when changed.
const peerSaveInterval = 10 * time.Second
