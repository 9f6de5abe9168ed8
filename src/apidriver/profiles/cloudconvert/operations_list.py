"""Task operation names of API v2 (the create paths ``POST /v2/{operation}``)."""

IMPORTS = (
    "import/url", "import/upload", "import/base64", "import/raw", "import/s3", "import/azure/blob",
    "import/google-cloud-storage", "import/openstack", "import/sftp",
)
PROCESSING = (
    "convert", "optimize", "watermark", "capture-website", "thumbnail", "merge", "archive", "command",
    "metadata", "metadata/write",
)
EXPORTS = (
    "export/url", "export/s3", "export/azure/blob", "export/google-cloud-storage", "export/openstack", "export/sftp",
)
OPERATIONS = IMPORTS + PROCESSING + EXPORTS
WEBHOOK_EVENTS = ("job.created", "job.finished", "job.failed")
