// The migrations are embedded by `sqlx::migrate!`; without this a new
// migration file would not trigger a rebuild (sqlx's documented advice).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
