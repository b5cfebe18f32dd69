//! Administration: adding accounts, channels and their members, live rooms with breakout rooms,
//! and seeding the demo classroom. The binary's admin commands and the desktop app's
//! one-command setup call these.

use classroom_api::{BreakoutRoom, ChannelRole};
use sqlx::Row;

use crate::auth;
use crate::db::{Classroom, new_id, now_ms, random_bytes};
use crate::error::Error;
use crate::validate;

/// What [`Classroom::add_live_room`] made.
#[derive(Debug, Clone)]
pub struct LiveRoomCreated {
    pub id: String,
    pub name: String,
    pub channel_id: String,
    pub invite_code: String,
    pub breakout_rooms: Vec<BreakoutRoom>,
}

/// What [`Classroom::seed_demo`] made, and how to sign in.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub channel_id: String,
    pub live_room: LiveRoomCreated,
    pub moderator_username: String,
    pub moderator_password: String,
    pub participant_username: String,
    pub participant_password: String,
}

impl DemoInfo {
    /// Lines for a person: who to sign in as, and the guest invite code.
    pub fn instructions(&self, base_url: &str) -> String {
        let rooms: Vec<&str> = self
            .live_room
            .breakout_rooms
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        format!(
            "Demo classroom:\n  channel {channel}, live room \"{room}\" ({lr}) with breakout rooms {rooms}\n  \
             moderator:   {mu} / {mp}\n  participant: {pu} / {pp}\n  guests join with invite code {code}\n\
             Sign in at {base_url}/ or with the app against {base_url}",
            channel = self.channel_id,
            room = self.live_room.name,
            lr = self.live_room.id,
            rooms = rooms.join(", "),
            mu = self.moderator_username,
            mp = self.moderator_password,
            pu = self.participant_username,
            pp = self.participant_password,
            code = self.live_room.invite_code,
        )
    }
}

/// An invite code people can read aloud: three groups of four from an alphabet without 0/o,
/// 1/l/i.
fn new_invite_code() -> Result<String, Error> {
    const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    let bytes = random_bytes::<12>()?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    Ok(chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

const DEMO_MODERATOR: (&str, &str, &str) = ("teacher", "Demo Teacher", "teacher-demo");
const DEMO_PARTICIPANT: (&str, &str, &str) = ("student", "Demo Student", "student-demo");
const DEMO_LIVE_ROOM: &str = "Demo live room";

impl Classroom {
    /// Adds an account; returns its id. Hashing takes a moment (argon2).
    pub async fn add_user(
        &self,
        username: &str,
        display_name: &str,
        password: &str,
    ) -> Result<String, Error> {
        let username = validate::username(username)?;
        let display_name = validate::text("display name", display_name, 64)?;
        validate::new_password(password)?;
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password)).await??;
        let id = new_id("u_")?;
        let res = sqlx::query(
            "INSERT INTO users (id, kind, username, display_name, password_hash, created_at)
             VALUES ($1, 'account', $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(&username)
        .bind(&display_name)
        .bind(&hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match res {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(Error::Conflict(format!("username {username:?} is taken")))
            }
            other => other.map(|_| id).map_err(Error::from),
        }
    }

    /// The id of the account with this username.
    pub async fn user_id(&self, username: &str) -> Result<String, Error> {
        sqlx::query_scalar("SELECT id FROM users WHERE username = $1 AND kind = 'account'")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user named {username:?}")))
    }

    /// Adds a channel; returns its id.
    pub async fn add_channel(&self, name: &str) -> Result<String, Error> {
        let name = validate::text("channel name", name, 100)?;
        let id = new_id("ch_")?;
        sqlx::query("INSERT INTO channels (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(&name)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// Makes an account a member of a channel with a role (replacing an earlier role).
    pub async fn add_channel_member(
        &self,
        channel_id: &str,
        username: &str,
        role: ChannelRole,
    ) -> Result<(), Error> {
        let user_id = self.user_id(username).await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM channels WHERE id = $1")
            .bind(channel_id)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(Error::NotFound(format!("no channel {channel_id:?}")));
        }
        sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, role) VALUES ($1, $2, $3)
             ON CONFLICT (channel_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(channel_id)
        .bind(&user_id)
        .bind(role.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Launches a live room from a channel, created by `creator` (who becomes a moderator),
    /// with the given breakout rooms in that order.
    pub async fn add_live_room(
        &self,
        channel_id: &str,
        name: &str,
        creator: &str,
        breakout_rooms: &[String],
        participants_may_record: bool,
    ) -> Result<LiveRoomCreated, Error> {
        let name = validate::text("live room name", name, 100)?;
        if breakout_rooms.is_empty() || breakout_rooms.len() > 100 {
            return Err(Error::Invalid(
                "a live room needs 1 to 100 breakout rooms".into(),
            ));
        }
        let names = breakout_rooms
            .iter()
            .map(|n| validate::text("breakout room name", n, 100))
            .collect::<Result<Vec<_>, _>>()?;
        let creator_id = self.user_id(creator).await?;
        let channel_exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM channels WHERE id = $1")
                .bind(channel_id)
                .fetch_optional(&self.pool)
                .await?;
        if channel_exists.is_none() {
            return Err(Error::NotFound(format!("no channel {channel_id:?}")));
        }
        let id = new_id("lr_")?;
        let invite_code = new_invite_code()?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO live_rooms (id, channel_id, name, created_by, invite_code, participants_may_record, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(channel_id)
        .bind(&name)
        .bind(&creator_id)
        .bind(&invite_code)
        .bind(participants_may_record)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let mut rooms = Vec::new();
        for (pos, n) in names.into_iter().enumerate() {
            let bid = new_id("br_")?;
            sqlx::query("INSERT INTO breakout_rooms (id, live_room_id, name, position) VALUES ($1, $2, $3, $4)")
                .bind(&bid)
                .bind(&id)
                .bind(&n)
                .bind(i64::try_from(pos).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
            rooms.push(BreakoutRoom { id: bid, name: n });
        }
        tx.commit().await?;
        Ok(LiveRoomCreated {
            id,
            name,
            channel_id: channel_id.to_string(),
            invite_code,
            breakout_rooms: rooms,
        })
    }

    /// Sets a live room's "participants may record" (as its moderators do through the API).
    pub async fn set_participants_may_record(
        &self,
        live_room_id: &str,
        allowed: bool,
    ) -> Result<(), Error> {
        let res = sqlx::query("UPDATE live_rooms SET participants_may_record = $1 WHERE id = $2")
            .bind(allowed)
            .bind(live_room_id)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(Error::NotFound(format!("no live room {live_room_id:?}")));
        }
        Ok(())
    }

    /// Seeds the demo classroom once: a channel, a live room with three breakout rooms, a
    /// moderator and a participant account, and the room's guest invite code. Run again, it
    /// finds and returns what the first run made.
    pub async fn seed_demo(&self) -> Result<DemoInfo, Error> {
        let (mu, _, mp) = DEMO_MODERATOR;
        let (pu, _, pp) = DEMO_PARTICIPANT;
        let existing = sqlx::query(
            "SELECT l.id, l.name, l.channel_id, l.invite_code FROM live_rooms l JOIN users u ON u.id = l.created_by
             WHERE u.username = $1 AND l.name = $2 ORDER BY l.created_at LIMIT 1",
        )
        .bind(mu)
        .bind(DEMO_LIVE_ROOM)
        .fetch_optional(&self.pool)
        .await?;
        let live_room = if let Some(r) = existing {
            let id: String = r.get("id");
            LiveRoomCreated {
                breakout_rooms: crate::library::breakout_rooms(&self.pool, &id).await?,
                id,
                name: r.get("name"),
                channel_id: r.get("channel_id"),
                invite_code: r.get("invite_code"),
            }
        } else {
            for (u, n, p) in [DEMO_MODERATOR, DEMO_PARTICIPANT] {
                match self.add_user(u, n, p).await {
                    Ok(_) | Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let channel = self.add_channel("Demo channel").await?;
            self.add_channel_member(&channel, mu, ChannelRole::Manager)
                .await?;
            self.add_channel_member(&channel, pu, ChannelRole::Member)
                .await?;
            let rooms: Vec<String> = ["Group A", "Group B", "Group C"].map(String::from).to_vec();
            self.add_live_room(&channel, DEMO_LIVE_ROOM, mu, &rooms, true)
                .await?
        };
        Ok(DemoInfo {
            channel_id: live_room.channel_id.clone(),
            live_room,
            moderator_username: mu.into(),
            moderator_password: mp.into(),
            participant_username: pu.into(),
            participant_password: pp.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn invite_codes_are_readable_and_valid() {
        let c = new_invite_code().unwrap();
        assert_eq!(c.len(), 14);
        assert_eq!(crate::validate::invite_code(&c).unwrap(), c);
        assert_ne!(c, new_invite_code().unwrap());
    }
}
