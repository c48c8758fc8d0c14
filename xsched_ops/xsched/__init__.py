"""What XSched is: its platforms (the table in platforms.toml), an install's layout, its settings
and their lint rules, the library search of its HAL, and its IPC state in a target."""
