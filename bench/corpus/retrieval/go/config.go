// Package config loads the service's settings from files and the environment.
package config

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config holds the settings the service starts with.
type Config struct {
	Addr         string        `json:"addr"`
	ReadTimeout  time.Duration `json:"read_timeout"`
	MaxBodyBytes int64         `json:"max_body_bytes"`
	Debug        bool          `json:"debug"`
}

// Load reads settings from a JSON file and applies environment overrides on top.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg := Default()
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ApplyEnv(cfg, os.Getenv)
	return cfg, cfg.Validate()
}

// Default returns the settings used when no file is given.
func Default() *Config {
	return &Config{Addr: ":8080", ReadTimeout: 10 * time.Second, MaxBodyBytes: 1 << 20}
}

// ApplyEnv overrides fields with APP_ADDR, APP_DEBUG and similar environment variables.
func ApplyEnv(cfg *Config, getenv func(string) string) {
	if v := getenv("APP_ADDR"); v != "" {
		cfg.Addr = v
	}
	if v := getenv("APP_DEBUG"); v != "" {
		cfg.Debug = v == "1" || strings.EqualFold(v, "true")
	}
	if v := getenv("APP_MAX_BODY"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			cfg.MaxBodyBytes = n
		}
	}
}

// Validate checks that the listen address and limits make sense.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return fmt.Errorf("addr is empty")
	}
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("max_body_bytes must be positive")
	}
	return nil
}

// ParseDotEnv reads KEY=value lines from a .env file, skipping comments and blank lines.
func ParseDotEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	values := make(map[string]string)
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		values[strings.TrimSpace(key)] = strings.Trim(strings.TrimSpace(value), `"`)
	}
	return values, scanner.Err()
}

// ParseByteSize converts sizes such as 10MB or 512k into a number of bytes.
func ParseByteSize(s string) (int64, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	multiplier := int64(1)
	for _, unit := range []struct {
		suffix string
		factor int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, unit.suffix) {
			multiplier = unit.factor
			s = strings.TrimSuffix(s, unit.suffix)
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, err
	}
	return n * multiplier, nil
}

func boolString(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
