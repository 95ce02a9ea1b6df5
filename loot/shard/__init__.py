"""The shard: owns a directory of SQLite files, one per database, and runs requests on them."""
