package store

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// Row types mirror the tables; they stay unexported so nothing above this
// package learns the schema.

type userRow struct {
	ID           string
	Email        string
	Name         *string
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

func (userRow) TableName() string { return "lanyard.users" }

type sessionRow struct {
	ID         string
	UserID     string
	SecretHash []byte
	Generation int64
	CreatedAt  time.Time
	RotatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	UserAgent  *string
	IP         *string `gorm:"column:ip"`
}

func (sessionRow) TableName() string { return "lanyard.sessions" }

// dbTime scans a timestamp whichever way the driver hands it over: Postgres
// and typed SQLite columns give time.Time, while SQLite expressions (such as
// the subqueries in RETURNING) have no declared type and give text.
type dbTime struct{ time.Time }

func (t *dbTime) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		t.Time = x.UTC()
	case string:
		return t.parse(x)
	case []byte:
		return t.parse(string(x))
	default:
		return fmt.Errorf("store: cannot scan %T into a time", v)
	}
	return nil
}

// sqliteTimeFormat is how the SQLite driver writes time.Time parameters.
const sqliteTimeFormat = "2006-01-02 15:04:05.999999999-07:00"

func (t *dbTime) parse(s string) error {
	p, err := time.Parse(sqliteTimeFormat, s)
	if err != nil {
		return fmt.Errorf("store: bad timestamp: %w", err)
	}
	t.Time = p.UTC()
	return nil
}

func (t dbTime) Value() (driver.Value, error) { return t.Time, nil }

// nullTime is a nullable dbTime.
type nullTime struct {
	Time  time.Time
	Valid bool
}

func (n *nullTime) Scan(v any) error {
	if v == nil {
		n.Valid = false
		return nil
	}
	var t dbTime
	if err := t.Scan(v); err != nil {
		return err
	}
	n.Time, n.Valid = t.Time, true
	return nil
}

func (n nullTime) Value() (driver.Value, error) {
	if !n.Valid {
		return nil, nil
	}
	return n.Time, nil
}

func (n nullTime) ptr() *time.Time {
	if !n.Valid {
		return nil
	}
	return &n.Time
}
