"""A person's rights over their data: the export of everything held about them (RGPD art. 15
and 20), and the retention of what is not kept for ever."""
