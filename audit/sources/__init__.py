"""Where sealed logs are read from: local directories, or cloud storage copied to a temporary directory."""
