package notify_test

import (
	"os"
	"testing"

	"github.com/ordertune/ordertune/internal/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
