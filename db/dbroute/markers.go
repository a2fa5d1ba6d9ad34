package dbroute

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Markers remember each user's last write position for a while, so that
// user's next reads go only to databases that replayed it. With Redis the
// markers are shared by every instance (a load balancer may send the next
// request anywhere); without, they live in this process.
type Markers struct {
	ttl    time.Duration
	rdb    *redis.Client // nil: in process only
	prefix string

	mu    sync.Mutex
	local map[uuid.UUID]marker
	swept time.Time
}

type marker struct {
	lsn     LSN
	expires time.Time
}

// MarkerTTL is how long a user's marker lives given the replicas' maximum
// lag: past it, every replica in rotation has replayed the write anyway
// (a replica further behind is out of rotation); the margin covers the
// health checks' own delay.
func MarkerTTL(maxLag time.Duration) time.Duration { return 2*maxLag + 10*time.Second }

// NewMarkers keeps markers for ttl, in Redis under prefix when rdb is not
// nil.
func NewMarkers(ttl time.Duration, rdb *redis.Client, prefix string) *Markers {
	return &Markers{ttl: ttl, rdb: rdb, prefix: prefix, local: map[uuid.UUID]marker{}}
}

// raiseScript keeps the highest position. Positions are stored as 16 hex
// digits, so string order is numeric order (Lua's numbers are doubles,
// which would round a large LSN).
var raiseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur < ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1`)

func (m *Markers) key(user uuid.UUID) string { return m.prefix + ":ryw:" + user.String() }

// Record notes that user's write committed at lsn.
func (m *Markers) Record(ctx context.Context, user uuid.UUID, lsn LSN) error {
	m.recordLocal(user, lsn, time.Now())
	if m.rdb == nil {
		return nil
	}
	arg := fmt.Sprintf("%016x", uint64(lsn))
	if err := raiseScript.Run(ctx, m.rdb, []string{m.key(user)}, arg, m.ttl.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("record read-your-writes marker in redis: %w", err)
	}
	return nil
}

// Get is user's last write position (0: none recent). With Redis, an
// error means the position is unknown: the caller must then read from the
// primary.
func (m *Markers) Get(ctx context.Context, user uuid.UUID) (LSN, error) {
	local := m.getLocal(user, time.Now())
	if m.rdb == nil {
		return local, nil
	}
	s, err := m.rdb.Get(ctx, m.key(user)).Result()
	if errors.Is(err, redis.Nil) {
		return local, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read read-your-writes marker from redis: %w", err)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("read-your-writes marker %q in redis is not an LSN", s)
	}
	return max(local, LSN(v)), nil
}

func (m *Markers) recordLocal(user uuid.UUID, lsn LSN, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.local[user]; ok && cur.lsn > lsn && now.Before(cur.expires) {
		lsn = cur.lsn
	}
	m.local[user] = marker{lsn: lsn, expires: now.Add(m.ttl)}
	// Sweep expired markers now and then, so memory follows the active
	// users, not every user ever seen.
	if now.Sub(m.swept) > m.ttl {
		for u, mk := range m.local {
			if now.After(mk.expires) {
				delete(m.local, u)
			}
		}
		m.swept = now
	}
}

func (m *Markers) getLocal(user uuid.UUID, now time.Time) LSN {
	m.mu.Lock()
	defer m.mu.Unlock()
	mk, ok := m.local[user]
	if !ok || now.After(mk.expires) {
		return 0
	}
	return mk.lsn
}
