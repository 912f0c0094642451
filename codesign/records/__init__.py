"""The files a project holds, each with its schema: design.json/.npz (the IR), report.json."""
