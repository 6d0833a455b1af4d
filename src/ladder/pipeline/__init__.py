"""The pipeline's machinery: its stages (dag), typed params (config), every path, what outputs were built from
(stamps, intact), who holds the project (lock), atomic files and progress lines. Imports nothing else of ladder."""
