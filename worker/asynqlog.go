package worker

import (
	"context"
	"fmt"
	"log/slog"
)

// asynqLogger adapts slog to asynq.Logger. asynq's Fatal is logged at
// error level and never exits the process.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.emit(slog.LevelDebug, args) }
func (l asynqLogger) Info(args ...any)  { l.emit(slog.LevelInfo, args) }
func (l asynqLogger) Warn(args ...any)  { l.emit(slog.LevelWarn, args) }
func (l asynqLogger) Error(args ...any) { l.emit(slog.LevelError, args) }
func (l asynqLogger) Fatal(args ...any) { l.emit(slog.LevelError, args) }

func (l asynqLogger) emit(level slog.Level, args []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprint(args...))
}
