package config

import (
	"container/heap"
	"context"
	"errors"
	"math/rand"
	"sort"
	"sync"
	"time"
)

// Retry runs fn until it succeeds or attempts run out, sleeping longer after each failure.
func Retry(ctx context.Context, attempts int, base time.Duration, fn func() error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(); err == nil {
			return nil
		}
		delay := base * time.Duration(1<<i)
		jitter := time.Duration(rand.Int63n(int64(delay)/2 + 1))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay + jitter):
		}
	}
	return err
}

// ErrQueueClosed is returned by Push after the queue has been closed.
var ErrQueueClosed = errors.New("queue closed")

// Job is a unit of work with a priority; lower numbers run first.
type Job struct {
	ID       string
	Priority int
	Run      func(context.Context) error
}

type jobHeap []*Job

func (h jobHeap) Len() int            { return len(h) }
func (h jobHeap) Less(i, j int) bool  { return h[i].Priority < h[j].Priority }
func (h jobHeap) Swap(i, j int)       { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)         { *h = append(*h, x.(*Job)) }
func (h *jobHeap) Pop() any           { old := *h; n := len(old); x := old[n-1]; *h = old[:n-1]; return x }

// Queue orders pending jobs by priority and hands them to workers.
type Queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	jobs   jobHeap
	closed bool
}

// NewQueue makes an empty job queue.
func NewQueue() *Queue {
	q := &Queue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Push adds a job to the queue and wakes one waiting worker.
func (q *Queue) Push(job *Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrQueueClosed
	}
	heap.Push(&q.jobs, job)
	q.cond.Signal()
	return nil
}

// Pop blocks until a job is available and returns the most urgent one.
func (q *Queue) Pop() (*Job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.jobs) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.jobs) == 0 {
		return nil, false
	}
	return heap.Pop(&q.jobs).(*Job), true
}

// Close stops accepting jobs and releases every worker waiting for one.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// RunWorkers starts n goroutines that take jobs from the queue until it is closed.
func RunWorkers(ctx context.Context, q *Queue, n int, report func(*Job, error)) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				job, ok := q.Pop()
				if !ok {
					return
				}
				report(job, job.Run(ctx))
			}
		}()
	}
	return &wg
}

// Debounce returns a function that calls fn only after calls have stopped for the given wait.
func Debounce(wait time.Duration, fn func()) func() {
	var mu sync.Mutex
	var timer *time.Timer
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if timer != nil {
			timer.Stop()
		}
		timer = time.AfterFunc(wait, fn)
	}
}

// Batch splits items into consecutive groups of at most size elements.
func Batch(items []string, size int) [][]string {
	var out [][]string
	for size < len(items) {
		items, out = items[size:], append(out, items[:size])
	}
	return append(out, items)
}

// Percentile returns the value below which the given share of samples fall.
func Percentile(samples []float64, p float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	sorted := append([]float64(nil), samples...)
	sort.Float64s(sorted)
	index := int(p * float64(len(sorted)-1))
	return sorted[index]
}

// Cron fires fn every interval until the context is cancelled.
func Cron(ctx context.Context, interval time.Duration, fn func(time.Time)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-ticker.C:
			fn(t)
		}
	}
}

// LRU is a fixed-size cache that forgets the least recently used key first.
type LRU struct {
	capacity int
	order    []string
	values   map[string]string
}

// Get returns the cached value for key and marks it as recently used.
func (c *LRU) Get(key string) (string, bool) {
	v, ok := c.values[key]
	if ok {
		c.touch(key)
	}
	return v, ok
}

// Put stores a value, evicting the oldest entry when the cache is full.
func (c *LRU) Put(key, value string) {
	if _, ok := c.values[key]; !ok && len(c.values) >= c.capacity {
		oldest := c.order[0]
		c.order = c.order[1:]
		delete(c.values, oldest)
	}
	c.values[key] = value
	c.touch(key)
}

func (c *LRU) touch(key string) {
	for i, k := range c.order {
		if k == key {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	c.order = append(c.order, key)
}
