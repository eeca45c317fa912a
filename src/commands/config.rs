//! `cocreate config check`.

use std::io::Write;

use crate::config::Config;

/// Prints what the checked config turns on, so the POC sees it was read as
/// meant, then whether the database opens. A database that cannot be
/// opened is an error after everything else has been shown.
pub async fn check(config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "{} is valid.", config.source)?;
    for (what, how) in config.summary() {
        writeln!(out, "  {:<19} {how}", format!("{what}:"))?;
    }
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
    out.flush()?;
    let state = crate::store::check(&config.database).await?;
    writeln!(out, "The database {state}.")?;
    Ok(())
}
