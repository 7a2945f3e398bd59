package provisiond

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/grid4/grid4/gridtypes"
)

// The engine's bbolt file has four buckets:
//
//	meta         "schema" -> 1; "next_id" -> last deployment id given out
//	deployments  id (8 bytes, big endian) -> Record (JSON)
//	changes      id (8) + seq (8) -> Change (JSON)
//	jobs         seq (8) -> job (JSON); the queue, in order
//
// Every state transition is one bbolt transaction, so the file is always
// consistent: a crash loses at most the transaction being committed.
const (
	bucketMeta        = "meta"
	bucketDeployments = "deployments"
	bucketChanges     = "changes"
	bucketJobs        = "jobs"

	keySchema = "schema"
	keyNextID = "next_id"
)

// bucket returns the named bucket of tx (created by initStore).
func bucket(tx *bolt.Tx, name string) *bolt.Bucket { return tx.Bucket([]byte(name)) }

// schemaVersion is the layout of the file described above.
const schemaVersion = 1

// job is a queued operation on a deployment: the workload steps it takes,
// in order, and how far it got.
type job struct {
	Seq        uint64 `json:"seq"`
	Deployment uint64 `json:"deployment"`
	TwinID     uint64 `json:"twin_id"`
	// Kind is deploy, update, delete, pause or resume.
	Kind    string `json:"kind"`
	Version uint32 `json:"version"`
	Steps   []step `json:"steps"`
	// Next is the index of the first step not done.
	Next int `json:"next"`
	// Attempts is the intent record of step Next: how many times it was
	// started without its result being recorded. Non-zero on start-up
	// means the process died (or stopped) while the step ran.
	Attempts int `json:"attempts,omitempty"`
	// Started is when the current attempt began.
	Started time.Time `json:"started,omitzero"`
}

// step is one operation on one workload.
type step struct {
	Op       gridtypes.Op       `json:"op"`
	Workload gridtypes.Workload `json:"workload"`
	// Was is, for an update, the workload's state when the update was
	// accepted: the record reads init from then on, but a manager
	// updating in place needs to know whether the workload ran.
	Was gridtypes.State `json:"was,omitempty"`
}

func u64key(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// be64 reads a key made by u64key.
func be64(k []byte) uint64 { return binary.BigEndian.Uint64(k) }

// initStore creates the buckets and checks the schema version.
func initStore(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketMeta, bucketDeployments, bucketChanges, bucketJobs} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		meta := bucket(tx, bucketMeta)
		v := meta.Get([]byte(keySchema))
		switch {
		case v == nil:
			return meta.Put([]byte(keySchema), u64key(schemaVersion))
		case len(v) != 8 || be64(v) != schemaVersion:
			return fmt.Errorf("provision database has schema %x, this engine knows %d", v, schemaVersion)
		}
		return nil
	})
}

// txStore gives typed access to the buckets inside one transaction.
type txStore struct{ tx *bolt.Tx }

func (s txStore) record(id uint64) (*gridtypes.Record, error) {
	v := bucket(s.tx, bucketDeployments).Get(u64key(id))
	if v == nil {
		return nil, fmt.Errorf("%w: %d", gridtypes.ErrNotFound, id)
	}
	var r gridtypes.Record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("deployment %d: corrupt record: %w", id, err)
	}
	return &r, nil
}

func (s txStore) putRecord(r *gridtypes.Record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return bucket(s.tx, bucketDeployments).Put(u64key(r.Deployment.ID), v)
}

// records calls f for every record in id order until it returns false.
func (s txStore) records(f func(*gridtypes.Record) bool) error {
	c := bucket(s.tx, bucketDeployments).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var r gridtypes.Record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("deployment %x: corrupt record: %w", k, err)
		}
		if !f(&r) {
			return nil
		}
	}
	return nil
}

func (s txStore) nextID() (uint64, error) {
	meta := bucket(s.tx, bucketMeta)
	var id uint64
	if v := meta.Get([]byte(keyNextID)); len(v) == 8 {
		id = be64(v)
	}
	id++
	return id, meta.Put([]byte(keyNextID), u64key(id))
}

func (s txStore) addChange(id uint64, c gridtypes.Change) error {
	b := bucket(s.tx, bucketChanges)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	c.Seq = seq
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return b.Put(append(u64key(id), u64key(seq)...), v)
}

func (s txStore) changes(id uint64) ([]gridtypes.Change, error) {
	prefix := u64key(id)
	c := bucket(s.tx, bucketChanges).Cursor()
	var out []gridtypes.Change
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var ch gridtypes.Change
		if err := json.Unmarshal(v, &ch); err != nil {
			return nil, fmt.Errorf("deployment %d: corrupt change: %w", id, err)
		}
		out = append(out, ch)
	}
	return out, nil
}

func (s txStore) enqueue(j *job) error {
	b := bucket(s.tx, bucketJobs)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	j.Seq = seq
	return s.putJob(j)
}

func (s txStore) putJob(j *job) error {
	v, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return bucket(s.tx, bucketJobs).Put(u64key(j.Seq), v)
}

func (s txStore) deleteJob(seq uint64) error {
	return bucket(s.tx, bucketJobs).Delete(u64key(seq))
}

// firstJob returns the oldest queued job, or nil.
func (s txStore) firstJob() (*job, error) {
	k, v := bucket(s.tx, bucketJobs).Cursor().First()
	if k == nil {
		return nil, nil
	}
	var j job
	if err := json.Unmarshal(v, &j); err != nil {
		return nil, fmt.Errorf("job %x: corrupt: %w", k, err)
	}
	return &j, nil
}

func (s txStore) jobCount() int {
	return bucket(s.tx, bucketJobs).Stats().KeyN
}
