"""The application layer: PDB preparation, restraints, reports, progress display and the command line."""
