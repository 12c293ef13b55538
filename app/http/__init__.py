"""HTTP plumbing below the routes: security headers, Server-Timing, streamed responses."""
