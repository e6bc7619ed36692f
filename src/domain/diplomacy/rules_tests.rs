//! Each rule of `check_record`, given a log state, when a record is checked, then the field
//! at fault is named.
