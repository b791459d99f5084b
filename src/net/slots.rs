//! A reactor's objects by the slot index of their handles: a paged array.
//!
//! Handle slot indexes are dense (a kind reuses freed slots, see `crate::handles`), so an array
//! indexed by them is the smallest and fastest map from handle to object: one word per slot, no
//! hashing. Pages of `PAGE` entries are allocated when first used and freed when emptied, so a
//! reactor whose few objects sit at high indexes (other reactors hold the low ones) pays for a page,
//! not for the whole range; and the array never doubles, so growth leaves no freed copy behind in
//! the heap (the idle-connections benchmark counts resident memory per connection). One emptied
//! page is kept for the next page needed: a reactor with one connection at a time walks through
//! the indexes (freed slots are reused late), and would otherwise free and make a page each time.

/// Entries per page: a 4 KiB page of pointer-sized entries.
const PAGE: usize = 512;

struct Page<V> {
    entries: Box<[Option<V>]>,
    used: usize,
}

pub struct Slots<V> {
    pages: Vec<Option<Page<V>>>,
    /// An emptied page (all `None`), kept for reuse.
    spare: Option<Box<[Option<V>]>>,
}

impl<V> Default for Slots<V> {
    fn default() -> Self {
        Slots {
            pages: Vec::new(),
            spare: None,
        }
    }
}

impl<V> Slots<V> {
    pub fn get(&self, index: usize) -> Option<&V> {
        let page = self.pages.get(index / PAGE)?.as_ref()?;
        page.entries[index % PAGE].as_ref()
    }

    /// Stores `value` at `index`, giving back what was there.
    pub fn insert(&mut self, index: usize, value: V) -> Option<V> {
        let page_number = index / PAGE;
        if self.pages.len() <= page_number {
            self.pages.resize_with(page_number + 1, || None);
        }
        let spare = &mut self.spare;
        let page = self.pages[page_number].get_or_insert_with(|| Page {
            entries: spare
                .take()
                .unwrap_or_else(|| (0..PAGE).map(|_| None).collect()),
            used: 0,
        });
        let previous = page.entries[index % PAGE].replace(value);
        if previous.is_none() {
            page.used += 1;
        }
        previous
    }

    /// Takes the value at `index` if `matches` accepts it (the caller checks that it is the object of
    /// the handle it holds, not of an older handle of the same slot).
    pub fn remove_if(&mut self, index: usize, matches: impl FnOnce(&V) -> bool) -> Option<V> {
        let page_number = index / PAGE;
        let page = self.pages.get_mut(page_number)?.as_mut()?;
        let entry = &mut page.entries[index % PAGE];
        if !entry.as_ref().is_some_and(matches) {
            return None;
        }
        let value = entry.take();
        page.used -= 1;
        if page.used == 0
            && let Some(emptied) = self.pages[page_number].take()
        {
            self.spare = Some(emptied.entries);
        }
        value
    }

    /// Every value, leaving the array empty.
    pub fn drain(&mut self) -> Vec<V> {
        self.spare = None;
        std::mem::take(&mut self.pages)
            .into_iter()
            .flatten()
            .flat_map(|page| page.entries.into_vec().into_iter().flatten())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_across_pages() {
        let mut slots = Slots::default();
        assert!(slots.get(0).is_none());
        assert!(slots.insert(3, "a").is_none());
        assert!(slots.insert(PAGE * 5 + 1, "b").is_none());
        assert_eq!(slots.insert(3, "c"), Some("a"));
        assert_eq!(slots.get(3), Some(&"c"));
        assert_eq!(slots.get(PAGE * 5 + 1), Some(&"b"));
        assert!(slots.get(PAGE * 5).is_none());
        assert!(slots.get(PAGE * 100).is_none());
        assert!(slots.remove_if(3, |v| *v == "a").is_none());
        assert_eq!(slots.remove_if(3, |v| *v == "c"), Some("c"));
        assert!(slots.remove_if(3, |_| true).is_none());
        assert_eq!(slots.get(PAGE * 5 + 1), Some(&"b"));
    }

    #[test]
    fn an_emptied_page_is_freed() {
        let mut slots = Slots::default();
        slots.insert(PAGE * 2, 1);
        slots.insert(PAGE * 2 + 7, 2);
        slots.remove_if(PAGE * 2, |_| true);
        assert!(slots.pages[2].is_some());
        slots.remove_if(PAGE * 2 + 7, |_| true);
        assert!(slots.pages[2].is_none());
        assert!(slots.spare.is_some(), "kept for the next page");
        slots.insert(PAGE * 3, 3);
        assert!(slots.spare.is_none(), "reused");
        assert_eq!(slots.get(PAGE * 3), Some(&3));
        assert!(slots.get(PAGE * 2 + 7).is_none());
    }

    #[test]
    fn drain_takes_everything() {
        let mut slots = Slots::default();
        for i in [0, 1, PAGE, PAGE * 3 + 9] {
            slots.insert(i, i);
        }
        let mut all = slots.drain();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, PAGE, PAGE * 3 + 9]);
        assert!(slots.get(1).is_none());
    }
}
