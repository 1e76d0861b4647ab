//! Vector growth in fixed byte size classes.
//!
//! Thousands of leaf and peer vectors grow side by side. Doubling would
//! leave a quarter of their memory spare on average; growing to the exact
//! length leaves behind freed blocks of odd sizes that no later request
//! fits, so the heap fragments. Sizes in eighth steps between powers of two
//! do neither: spare room stays under an eighth, and a block one vector
//! frees is exactly the size the next vector growing past it asks for.

/// The smallest size class holding `bytes`: multiples of 16 up to 128, then
/// 2^k · (8 + i) / 8.
fn class_bytes(bytes: usize) -> usize {
    if bytes <= 128 {
        return bytes.max(1).next_multiple_of(16);
    }
    let eighth = 1usize << (usize::BITS - 1 - bytes.leading_zeros() - 3);
    bytes.next_multiple_of(eighth)
}

/// The capacity for `len` elements of `T`, rounded up to a size class.
fn class_capacity<T>(len: usize) -> usize {
    let size = std::mem::size_of::<T>().max(1);
    class_bytes(len * size) / size
}

/// Makes room for one more element, growing to the next size class.
pub fn reserve_one<T>(entries: &mut Vec<T>) {
    if entries.len() == entries.capacity() {
        let capacity = class_capacity::<T>(entries.len() + 1);
        entries.reserve_exact(capacity - entries.len());
    }
}

/// Makes room for `extra` more elements, growing to a size class.
pub fn reserve<T>(entries: &mut Vec<T>, extra: usize) {
    if entries.len() + extra > entries.capacity() {
        let capacity = class_capacity::<T>(entries.len() + extra);
        entries.reserve_exact(capacity - entries.len());
    }
}

/// After a removal: gives back spare room once it is two classes or more,
/// so a vector that lost many elements does not hold on to their room, and
/// one that loses and regains an element does not reallocate each time.
pub fn release<T>(entries: &mut Vec<T>) {
    let len = entries.len();
    if entries.capacity() > class_capacity::<T>(len + len / 4 + 1) {
        entries.shrink_to(class_capacity::<T>(len));
    }
}

/// Gives back spare room beyond the size class of the length.
pub fn trim<T>(entries: &mut Vec<T>) {
    if entries.is_empty() {
        *entries = Vec::new();
        return;
    }
    let capacity = class_capacity::<T>(entries.len());
    if entries.capacity() > capacity {
        entries.shrink_to(capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_step_by_an_eighth() {
        assert_eq!(class_bytes(1), 16);
        assert_eq!(class_bytes(100), 112);
        assert_eq!(class_bytes(1024), 1024);
        assert_eq!(class_bytes(1025), 1152);
        assert_eq!(class_bytes(6000), 6144);
        for bytes in 129..100_000 {
            let class = class_bytes(bytes);
            assert!(class >= bytes && class - bytes <= bytes / 8, "{bytes}");
        }
    }

    #[test]
    fn vectors_grow_and_trim_to_classes() {
        let mut entries: Vec<[u8; 40]> = Vec::new();
        for n in 0..1000 {
            reserve_one(&mut entries);
            entries.push([0; 40]);
            assert!(entries.capacity() * 40 <= class_bytes((n + 1) * 40) + 40);
        }
        entries.truncate(10);
        trim(&mut entries);
        assert_eq!(entries.capacity(), class_capacity::<[u8; 40]>(10));
    }
}
