//! `cocreate config check`.

use std::io::Write;

use crate::config::Config;

/// Prints what the checked config contains, so the POC sees it was read as meant.
pub fn check(config: &Config, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{} is valid.", config.source)?;
    writeln!(out, "  listen:   {}", config.server.listen)?;
    writeln!(
        out,
        "  database: {}",
        crate::store::redact(&config.database.url)
    )?;
    writeln!(
        out,
        "  office:   {} <{}>, time zone {}",
        config.office.name.en, config.office.email, config.office.time_zone
    )?;
    writeln!(out, "  policy areas: {}", config.policy_areas.len())?;
    for area in &config.policy_areas {
        writeln!(
            out,
            "    {:<10} {} / {} (LFP: {}; {} direct and {} indirect keywords)",
            area.code,
            area.name.sq,
            area.name.en,
            area.lfp.name.en,
            area.direct_keywords.len(),
            area.indirect_keywords.len()
        )?;
    }
    Ok(())
}
